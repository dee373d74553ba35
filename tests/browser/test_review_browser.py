"""An annotator works through every review mode in real Chromium using only the keyboard; model text
that looks like HTML stays inert; a double click stores one answer; an unsent edit survives a reload."""

import pytest

from annotation.models import Annotation, Candidate, CandidateSource, Item, ReviewTask
from annotation.services.candidates import candidates_create
from tests.annotation.review_factories import items_with_candidates, queue_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = '<script>alert("xss")</script><img src=x onerror="alert(1)">'


def panel_task(page) -> str | None:
    return page.locator("#panel").get_attribute("data-task")


def press_and_wait_for_next(page, key: str) -> None:
    """Presses `key` (a submit) and waits until htmx has swapped in a different panel."""
    before = panel_task(page)
    page.keyboard.press(key)
    page.wait_for_function(
        "before => { const p = document.getElementById('panel'); return p && p.dataset.task !== before; }",
        arg=before,
    )


def answers(mode):
    return list(Annotation.objects.filter(mode=mode).order_by("id"))


@pytest.fixture
def instruction_project(admin_user, annotator):
    project = queue_project(
        admin=admin_user,
        annotators=[annotator],
        modes=["rate", "compare", "edit"],
        guidelines="Prefer **correct** answers.",
    )
    items_with_candidates(
        project, 1, prompt="What is the capital of France?", texts=("Paris is the capitol.", "Lyon.")
    )
    return project


def test_annotator_rates_compares_and_edits_with_the_keyboard(login, annotator, instruction_project):
    page = login("bob")
    base = f"/projects/{instruction_project.pk}/queue/"

    page.goto(base + "?mode=rate")
    assert page.locator("#help").is_hidden()
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "choose a rating" in page.locator("#help").inner_text()
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()
    page.keyboard.press("4")
    assert page.locator("input[name=rating][value='4']").is_checked()
    press_and_wait_for_next(page, "Enter")
    page.keyboard.press("2")
    press_and_wait_for_next(page, "Enter")
    assert page.locator("#panel .all-done").is_visible()
    assert [a.rating for a in answers("rate")] == [4, 2]
    assert all(a.duration_ms is not None and a.duration_ms >= 0 for a in answers("rate"))

    page.goto(base + "?mode=compare")
    shown_a = page.locator(".candidate[data-side=a] .text").inner_text()
    task = ReviewTask.objects.get(mode="compare")
    assert shown_a == task.candidate_a.text  # the stored, randomised order
    page.keyboard.press("b")
    press_and_wait_for_next(page, "Enter")
    assert [a.choice for a in answers("compare")] == ["b"]

    page.goto(base + "?mode=edit")
    page.keyboard.press("e")
    for _ in range(len("capitol.")):
        page.keyboard.press("Backspace")
    page.keyboard.type("capital.")
    diff = page.locator("#edit-diff")
    assert diff.locator("del").first.inner_text() == "capitol."
    assert diff.locator("ins").first.inner_text() == "capital."
    page.keyboard.press("Escape")  # leave the editor; shortcuts work again
    assert page.evaluate("document.activeElement.tagName") != "TEXTAREA"
    press_and_wait_for_next(page, "Control+Enter")
    edit = answers("edit")[0]
    human = Candidate.objects.get(source=CandidateSource.HUMAN, parent__text="Paris is the capitol.")
    assert human.text == "Paris is the capital." and edit.result_candidate_id == human.pk
    assert not page.errors and not page.dialogs


def test_annotator_corrects_a_label_and_tags_entities_with_the_keyboard(login, admin_user, annotator):
    sentiment = queue_project(
        admin=admin_user,
        annotators=[annotator],
        name="Sentiment",
        task_type="classification",
        labels=["positive", "negative"],
        modes=["label"],
    )
    review = Item.objects.create(project=sentiment, text="The plot dragged and the ending fell flat.")
    candidates_create(
        project=sentiment, rows=[{"item": review.pk, "label": "positive", "scores": {"confidence": 0.62}}]
    )
    people = queue_project(
        admin=admin_user,
        annotators=[annotator],
        name="People",
        task_type="ner",
        labels=["PER", "LOC"],
        modes=["label"],
    )
    # The flag is two code points (four UTF-16 units): offsets after it show which count is used.
    sentence = Item.objects.create(project=people, text="Ada Lovelace 🇬🇧 was born in London.")
    candidates_create(
        project=people, rows=[{"item": sentence.pk, "label": [{"start": 0, "end": 12, "label": "PER"}]}]
    )
    page = login("bob")

    page.goto(f"/projects/{sentiment.pk}/queue/?mode=label")
    suggested = page.locator("label.choice.suggested")
    assert "positive" in suggested.inner_text() and "0.62" in suggested.inner_text()
    assert page.locator("input[name=labels][value=positive]").is_checked()
    page.keyboard.press("2")
    assert page.locator("input[name=labels][value=negative]").is_checked()
    press_and_wait_for_next(page, "Enter")
    assert answers("label")[0].value == {"labels": ["negative"]}

    page.goto(f"/projects/{people.pk}/queue/?mode=label")
    assert page.locator(".ner-text .ent.suggested").first.inner_text() == "Ada"
    assert "PER “Ada Lovelace”" in page.locator(".span-list").inner_text()
    for _ in range(7):  # Ada, Lovelace, two flag halves, was, born, in -> London
        page.keyboard.press("ArrowRight")
    assert page.locator(".ner-text .cur").inner_text() == "London"
    page.keyboard.press("2")  # LOC
    assert "LOC “London”" in page.locator(".span-list").inner_text()
    page.keyboard.press("ArrowLeft")  # "in"
    page.keyboard.press("1")  # tagged PER by mistake ...
    assert "PER “in”" in page.locator(".span-list").inner_text()
    page.keyboard.press("Delete")  # ... and taken back
    assert "PER “in”" not in page.locator(".span-list").inner_text()
    press_and_wait_for_next(page, "Enter")
    spans = answers("label")[1].value["spans"]
    assert spans == [
        {"start": 0, "end": 12, "label": "PER", "text": "Ada Lovelace"},
        {"start": 28, "end": 34, "label": "LOC", "text": "London"},
    ]
    assert not page.errors


def test_model_html_is_inert_and_a_double_click_stores_one_answer(login, admin_user, annotator):
    project = queue_project(admin=admin_user, annotators=[annotator])
    items_with_candidates(project, 2, prompt=f"Say {XSS}", texts=(f"Sure: {XSS}",))
    page = login("bob")
    page.goto(f"/projects/{project.pk}/queue/?mode=rate")
    assert page.locator(".candidate .text").inner_text() == f"Sure: {XSS}"
    assert page.locator(".item .text").first.inner_text() == f"Say {XSS}"
    assert page.locator("#panel img").count() == 0 and page.locator("#panel script").count() == 0
    first = panel_task(page)
    page.locator("input[name=rating][value='5']").check()
    page.locator("form.answer button[type=submit]").dblclick()
    page.wait_for_function("before => document.getElementById('panel').dataset.task !== before", arg=first)
    page.wait_for_timeout(500)  # let a second request, if one were sent, arrive
    assert Annotation.objects.filter(task_id=int(first)).count() == 1
    assert Annotation.objects.count() == 1
    assert page.locator(".notice").inner_text() == "Saved."
    assert page.dialogs == [] and not page.errors


def test_an_unsent_edit_comes_back_after_a_reload(login, admin_user, annotator):
    project = queue_project(admin=admin_user, annotators=[annotator], modes=["edit"])
    items_with_candidates(project, 1, texts=("Draft answer.",))
    page = login("bob")
    page.goto(f"/projects/{project.pk}/queue/?mode=edit")
    page.keyboard.press("e")
    page.keyboard.type(" Plus my addition.")
    page.wait_for_function("document.querySelector('.draft-status').textContent.startsWith('Draft saved')")
    page.reload()
    assert page.locator("textarea[name=text]").input_value() == "Draft answer. Plus my addition."
    assert "Your draft was restored." in page.locator(".draft-status").inner_text()
    assert "Plus my addition." in page.locator("#edit-diff ins").inner_text()


def test_ner_spans_by_mouse_selection_and_click_to_remove(login, admin_user, annotator):
    project = queue_project(
        admin=admin_user, annotators=[annotator], task_type="ner", labels=["PER", "LOC"], modes=["label"]
    )
    item = Item.objects.create(project=project, text="Grace 🙂 Hopper visited Arlington today.")
    candidates_create(
        project=project, rows=[{"item": item.pk, "label": [{"start": 0, "end": 5, "label": "LOC"}]}]
    )
    page = login("bob")
    page.goto(f"/projects/{project.pk}/queue/?mode=label")
    page.locator(".ner-text .ent", has_text="Grace").click()  # a wrong suggestion: click removes it
    assert "Grace" not in page.locator(".span-list").inner_text()
    page.locator(".ner-text span", has_text="Arlington").dblclick()  # selects the word
    page.keyboard.press("2")
    assert "LOC “Arlington”" in page.locator(".span-list").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_function("!document.getElementById('panel').dataset.task")
    assert Annotation.objects.get().value["spans"] == [
        {"start": 23, "end": 32, "label": "LOC", "text": "Arlington"}
    ]
