"""The queue pages without a browser: plain POST + redirect (no JavaScript), htmx partial swaps,
drafts, shared task links, escaping, and the admin's live counts page."""

import re
import uuid

import pytest
from django.test import override_settings

from annotation.models import Annotation, AnnotationDraft, Item, Membership, Role, TaskLease
from annotation.services.candidates import candidates_create

from .review_factories import items_with_candidates, queue_project, tasks_of

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
XSS = '<script>alert("x")</script><img src=x onerror="alert(1)">'


def form_fields(html: str) -> dict:
    return dict(re.findall(r'name="(client_id|csrfmiddlewaretoken)" value="([^"]+)"', html))


def panel_task_id(html: str) -> int:
    return int(re.search(r'id="panel"[^>]*data-task="(\d+)"', html).group(1))


@pytest.fixture
def rate_project(admin_user, annotator):
    project = queue_project(
        admin=admin_user,
        annotators=[annotator],
        modes=["rate", "edit"],
        guidelines="# How to rate\n\nBe **fair**. <script>alert(1)</script>",
        rubric={"1": "Useless", "2": "Poor", "3": "Fair", "4": "Good", "5": "Perfect"},
    )
    items_with_candidates(project, 2, prompt=f"Prompt {XSS}", texts=(f"Answer {XSS}",))
    return project


def test_overview_shows_guidelines_progress_and_start_links(client, annotator, rate_project):
    client.force_login(annotator)
    html = client.get(f"/projects/{rate_project.pk}/queue/").content.decode()
    assert "<h1>How to rate</h1>" in html and "<strong>fair</strong>" in html
    assert "<script>alert(1)</script>" not in html
    assert re.search(r"<td>Rate 1-5</td><td>0</td><td>2</td>", html)
    assert f'href="/projects/{rate_project.pk}/queue/?mode=rate">Start rate</a>' in html


def test_rating_without_javascript_posts_and_redirects_to_the_next_task(client, annotator, rate_project):
    client.force_login(annotator)
    page = client.get(f"/projects/{rate_project.pk}/queue/?mode=rate")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Perfect" in html and "<kbd>5</kbd>" in html  # the rubric beside its key
    first = panel_task_id(html)
    fields = form_fields(html)
    posted = client.post(f"/tasks/{first}/annotate/", {**fields, "rating": "5", "comment": "Nice"})
    assert posted.status_code == 302 and posted["Location"] == f"/projects/{rate_project.pk}/queue/?mode=rate"
    # The browser resends the form (back button, double submit): still one annotation.
    again = client.post(f"/tasks/{first}/annotate/", {**fields, "rating": "5", "comment": "Nice"})
    assert again.status_code == 302
    assert Annotation.objects.filter(task_id=first).count() == 1
    annotation = Annotation.objects.get()
    assert (annotation.rating, annotation.value["comment"]) == (5, "Nice")
    following = client.get(posted["Location"]).content.decode()
    assert "Saved." in following or "Already saved." in following
    assert panel_task_id(following) != first
    assert 'done today <strong class="done-today">1</strong>' in following


def test_invalid_answer_without_javascript_shows_the_form_again_with_the_message(
    client, annotator, rate_project
):
    client.force_login(annotator)
    html = client.get(f"/projects/{rate_project.pk}/queue/?mode=rate").content.decode()
    task_id = panel_task_id(html)
    response = client.post(
        f"/tasks/{task_id}/annotate/", {**form_fields(html), "comment": "forgot the rating"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose a rating from 1 to 5." in body
    assert 'value="forgot the rating"' in body
    assert not Annotation.objects.exists()


def test_htmx_submit_swaps_in_the_next_task_panel(client, annotator, rate_project):
    client.force_login(annotator)
    html = client.get(f"/projects/{rate_project.pk}/queue/?mode=rate").content.decode()
    first = panel_task_id(html)
    response = client.post(f"/tasks/{first}/annotate/", {**form_fields(html), "rating": "3"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="panel"') and "<html" not in body
    second = panel_task_id(body)
    assert second != first and "Saved." in body
    assert response["HX-Replace-Url"] == f"/tasks/{second}/"
    last = client.post(f"/tasks/{second}/annotate/", {**form_fields(body), "rating": "4"}, **HTMX)
    assert "Nothing left in rate for you right now." in last.content.decode()
    assert last["HX-Replace-Url"] == f"/projects/{rate_project.pk}/queue/?mode=rate"


def test_candidate_and_prompt_text_are_shown_as_text(client, annotator, rate_project):
    client.force_login(annotator)
    html = client.get(f"/projects/{rate_project.pk}/queue/?mode=rate").content.decode()
    assert "<script>alert(&quot;x&quot;)" not in html and "<img src=x" not in html
    assert (
        "Answer &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
        in html
    )
    assert "Prompt &lt;script&gt;" in html


def test_skip_without_javascript(client, annotator, rate_project):
    client.force_login(annotator)
    html = client.get(f"/projects/{rate_project.pk}/queue/?mode=rate").content.decode()
    first = panel_task_id(html)
    response = client.post(f"/tasks/{first}/skip/", {**form_fields(html), "skip_reason": "unsure"})
    assert response.status_code == 302
    following = client.get(response["Location"]).content.decode()
    assert panel_task_id(following) != first and "it comes back after the rest" in following


def test_an_unsent_edit_is_kept_as_a_draft_and_restored(client, annotator, rate_project):
    client.force_login(annotator)
    html = client.get(f"/projects/{rate_project.pk}/queue/?mode=edit").content.decode()
    task_id = panel_task_id(html)
    saved = client.post(f"/tasks/{task_id}/draft/", {**form_fields(html), "text": "My better answer"}, **HTMX)
    assert saved.status_code == 200 and saved.content.decode().startswith("Draft saved")
    assert AnnotationDraft.objects.get().value == {"text": "My better answer"}
    # The browser was closed and the lease ran out; the same annotator comes back later.
    TaskLease.objects.all().delete()
    back = client.get(f"/projects/{rate_project.pk}/queue/?mode=edit").content.decode()
    assert panel_task_id(back) == task_id
    assert "Your draft was restored." in back
    assert ">My better answer</textarea>" in back


def test_a_shared_task_link_opens_the_task_or_says_why_not(client, annotator, make_user, rate_project):
    other = make_user("carol")
    Membership.objects.create(project=rate_project, user=other, role=Role.ANNOTATOR)
    task = tasks_of(rate_project, "rate")[0]
    client.force_login(annotator)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert panel_task_id(html) == task.pk
    client.post(f"/tasks/{task.pk}/annotate/", {**form_fields(html), "rating": "2"})
    assert "You answered task" in client.get(f"/tasks/{task.pk}/").content.decode()
    client.force_login(other)
    refused = client.get(f"/tasks/{task.pk}/").content.decode()
    assert f"Task {task.pk} is not open to you now" in refused
    client.force_login(make_user("eve"))
    assert client.get(f"/tasks/{task.pk}/").status_code == 404


def test_compare_page_shows_both_candidates_in_the_stored_order(client, admin_user, annotator):
    project = queue_project(admin=admin_user, annotators=[annotator], modes=["compare"])
    items_with_candidates(project, 1, texts=("Left text", "Right text"))
    task = tasks_of(project, "compare")[0]
    client.force_login(annotator)
    html = client.get(f"/projects/{project.pk}/queue/?mode=compare").content.decode()
    a = html.index(task.candidate_a.text)
    b = html.index(task.candidate_b.text)
    assert a < b
    response = client.post(f"/tasks/{task.pk}/annotate/", {**form_fields(html), "choice": "tie"})
    assert response.status_code == 302 and Annotation.objects.get().choice == "tie"


def test_label_page_preselects_the_suggestion_with_its_confidence(client, admin_user, annotator):
    project = queue_project(
        admin=admin_user,
        annotators=[annotator],
        task_type="classification",
        labels=["positive", "negative"],
        modes=["label"],
    )
    item = Item.objects.create(project=project, text="Great film, <b>loved</b> it")
    candidates_create(
        project=project, rows=[{"item": item.pk, "label": "positive", "scores": {"confidence": 0.87}}]
    )
    client.force_login(annotator)
    html = client.get(f"/projects/{project.pk}/queue/?mode=label").content.decode()
    assert re.search(
        r'value="positive" checked>\s*<kbd>1</kbd> positive\s*<span class="pill suggestion">suggested · 0.87',
        html,
    )
    assert 'value="negative">' in html
    assert "Great film, &lt;b&gt;loved&lt;/b&gt; it" in html
    task_id = panel_task_id(html)
    client.post(
        f"/tasks/{task_id}/annotate/", {**form_fields(html), "labels_present": "1", "labels": "negative"}
    )
    assert Annotation.objects.get().value == {"labels": ["negative"]}


def test_ner_spans_posted_as_json_without_javascript(client, admin_user, annotator):
    project = queue_project(
        admin=admin_user, annotators=[annotator], task_type="ner", labels=["PER", "LOC"], modes=["label"]
    )
    item = Item.objects.create(project=project, text="Ada met Byron in London.")
    candidates_create(
        project=project, rows=[{"item": item.pk, "label": [{"start": 0, "end": 3, "label": "PER"}]}]
    )
    client.force_login(annotator)
    html = client.get(f"/projects/{project.pk}/queue/?mode=label").content.decode()
    assert '<mark class="ent">Ada<span class="ent-label">PER</span></mark>' in html
    task_id = panel_task_id(html)
    bad = client.post(f"/tasks/{task_id}/annotate/", {**form_fields(html), "spans": "[{"})
    assert bad.status_code == 400 and "The spans are not valid JSON" in bad.content.decode()
    spans = '[{"start": 0, "end": 3, "label": "PER"}, {"start": 17, "end": 23, "label": "LOC"}]'
    client.post(f"/tasks/{task_id}/annotate/", {**form_fields(html), "spans": spans})
    assert [s["text"] for s in Annotation.objects.get().value["spans"]] == ["Ada", "London"]


def test_chat_items_show_as_a_conversation(client, admin_user, annotator):
    project = queue_project(admin=admin_user, annotators=[annotator])
    item = Item.objects.create(
        project=project,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of <i>France</i>?"},
        ],
    )
    candidates_create(project=project, rows=[{"item": item.pk, "text": "Paris."}])
    client.force_login(annotator)
    html = client.get(f"/projects/{project.pk}/queue/?mode=rate").content.decode()
    assert (
        '<div class="msg msg-system"><div class="role">system</div><div class="text">Be brief.</div></div>'
        in html
    )
    assert (
        '<div class="msg msg-user"><div class="role">user</div><div class="text">Capital of &lt;i&gt;France&lt;/i&gt;?</div>'
        in html
    )


def test_a_late_htmx_submit_to_a_full_task_says_so_and_moves_on(client, admin_user, annotator, rate_project):
    client.force_login(annotator)
    html = client.get(f"/projects/{rate_project.pk}/queue/?mode=rate").content.decode()
    task_id = panel_task_id(html)
    TaskLease.objects.all().delete()
    from annotation.services.review import annotation_submit

    annotation_submit(
        task=tasks_of(rate_project, "rate")[0], user=admin_user, value={"rating": 1}, client_id=uuid.uuid4()
    )
    response = client.post(f"/tasks/{task_id}/annotate/", {**form_fields(html), "rating": "5"}, **HTMX)
    body = response.content.decode()
    assert "already has its 1 annotation(s); your answer was not stored" in body
    assert panel_task_id(body) != task_id
    assert Annotation.objects.filter(annotator=annotator).count() == 0


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_live_counts_page_polls_on_the_in_memory_layer(client, admin_user, annotator, rate_project):
    client.force_login(annotator)
    assert client.get(f"/projects/{rate_project.pk}/queue/live/").status_code == 403
    client.get(f"/projects/{rate_project.pk}/queue/?mode=rate")
    client.force_login(admin_user)
    html = client.get(f"/projects/{rate_project.pk}/queue/live/").content.decode()
    assert 'hx-trigger="every 3s"' in html and "ws-connect" not in html
    assert re.search(
        r"<td>Rate 1-5</td>\s*<td class=\"open\">1</td>\s*<td class=\"leased\">1</td>\s*<td class=\"done\">0</td>",
        html,
    )
    partial = client.get(f"/projects/{rate_project.pk}/queue/live/", **HTMX).content.decode()
    assert partial.lstrip().startswith('<div id="live-counts"')


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": []}}}
)
def test_live_counts_page_uses_the_websocket_on_a_shared_layer(client, admin_user, rate_project):
    client.force_login(admin_user)
    html = client.get(f"/projects/{rate_project.pk}/queue/live/").content.decode()
    assert f'ws-connect="/ws/projects/{rate_project.pk}/queue/live/"' in html
    assert 'hx-trigger="every' not in html
