"""Edit tasks on rationale-recipe candidates: the page shows the label and the rationale as separate
fields, and the answer keeps both (the human candidate carries the corrected label)."""

import re

import pytest

from annotation.models import Annotation, Candidate, CandidateSource, Item
from annotation.services.tasks import review_tasks_sync

from .review_factories import queue_project, tasks_of
from .test_review_views import HTMX, form_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def rationale_task(admin_user, annotator):
    project = queue_project(
        admin=admin_user,
        annotators=[annotator],
        name="Rationales",
        task_type="classification",
        labels=["positive", "negative"],
        modes=["edit"],
    )
    item = Item.objects.create(project=project, text="Great, another delay.")
    Candidate.objects.create(
        item=item,
        text="Great is a word of praise, so the review is happy.",
        label="positive",
        recipe="rationale",
        source=CandidateSource.MODEL,
        scores={"rationale": True, "contradicts_gold": False},
    )
    review_tasks_sync(project=project, item_ids=[item.pk])
    return tasks_of(project, "edit")[0]


def test_rationale_edit_shows_label_and_rationale_apart_and_keeps_both(client, annotator, rationale_task):
    client.force_login(annotator)
    html = client.get(f"/tasks/{rationale_task.pk}/").content.decode()
    assert "Rationale: the reasoning that leads to the label" in html
    assert re.search(r'type="radio" name="labels" value="positive" checked', html)
    assert re.search(r'type="radio" name="labels" value="negative">', html)
    assert ">Great is a word of praise, so the review is happy.</textarea>" in html

    posted = client.post(
        f"/tasks/{rationale_task.pk}/annotate/",
        {**form_fields(html), "labels": "negative", "text": "'Great' is sarcastic here: a complaint."},
    )
    assert posted.status_code == 302
    answer = Annotation.objects.get(task=rationale_task)
    assert answer.value["labels"] == ["negative"]
    assert answer.value["text"] == "'Great' is sarcastic here: a complaint."
    human = answer.result_candidate
    assert human.label == "negative" and human.parent_id == rationale_task.candidate_a_id


def test_a_label_outside_the_project_is_refused_and_nothing_is_stored(client, annotator, rationale_task):
    client.force_login(annotator)
    html = client.get(f"/tasks/{rationale_task.pk}/").content.decode()
    response = client.post(
        f"/tasks/{rationale_task.pk}/annotate/",
        {**form_fields(html), "labels": "sarcastic", "text": "A complaint."},
        **HTMX,
    )
    assert "sarcastic" in response.content.decode()
    assert not Annotation.objects.exists()
    assert not Candidate.objects.filter(source=CandidateSource.HUMAN).exists()


def test_plain_edit_tasks_still_take_only_text(client, admin_user, annotator):
    from .review_factories import items_with_candidates

    project = queue_project(admin=admin_user, annotators=[annotator], modes=["edit"])
    items_with_candidates(project, 1, texts=("Draft answer.",))
    task = tasks_of(project, "edit")[0]
    client.force_login(annotator)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'name="labels"' not in html and "Edit the answer into a good one" in html
