"""The review queue over the REST API: next, submit, skip, and the annotation list."""

import uuid

import pytest
from django.utils import timezone

from annotation.models import Annotation, Membership, Role

from .review_factories import items_with_candidates, queue_project, tasks_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def compare_project(admin_user, annotator):
    project = queue_project(admin=admin_user, annotators=[annotator], modes=["compare", "rate"])
    Membership.objects.filter(project=project, user=admin_user).update(role=Role.ADMIN)
    items_with_candidates(project, 2, prompt="Say <b>hi</b>", texts=("Hello!", "Hi."))
    return project


def test_next_leases_a_task_with_its_item_and_candidates_in_the_order_shown(
    api_client_for, annotator, compare_project
):
    response = api_client_for(annotator).get(
        f"/api/v1/projects/{compare_project.pk}/tasks/next/?mode=compare"
    )
    assert response.status_code == 200
    body = response.json()
    stored = tasks_of(compare_project, "compare")[0]
    assert body["id"] == stored.pk and body["mode"] == "compare"
    assert [c["position"] for c in body["candidates"]] == ["a", "b"]
    assert [c["id"] for c in body["candidates"]] == [stored.candidate_a_id, stored.candidate_b_id]
    assert body["item"]["prompt"] == "Say <b>hi</b>"
    assert body["lease_expires_at"] and body["draft"] is None


def test_next_answers_204_when_nothing_is_left(api_client_for, annotator, compare_project):
    client = api_client_for(annotator)
    url = f"/api/v1/projects/{compare_project.pk}/tasks/next/?mode=compare"
    for _ in range(2):
        task = client.get(url).json()
        posted = client.post(
            f"/api/v1/tasks/{task['id']}/annotations/",
            {"value": {"choice": "a"}, "client_id": str(uuid.uuid4()), "duration_ms": 900},
            format="json",
        )
        assert posted.status_code == 201
    assert client.get(url).status_code == 204


def test_next_without_a_mode_tries_the_projects_modes_in_order(api_client_for, annotator, compare_project):
    body = api_client_for(annotator).get(f"/api/v1/projects/{compare_project.pk}/tasks/next/").json()
    assert body["mode"] == "compare"


def test_next_with_a_mode_the_project_does_not_use(api_client_for, annotator, compare_project):
    response = api_client_for(annotator).get(f"/api/v1/projects/{compare_project.pk}/tasks/next/?mode=edit")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Choose a review mode this project uses: compare, rate."


def test_submit_is_idempotent_on_client_id(api_client_for, annotator, compare_project):
    client = api_client_for(annotator)
    task = client.get(f"/api/v1/projects/{compare_project.pk}/tasks/next/?mode=rate").json()
    payload = {"value": {"rating": 4, "comment": "ok"}, "client_id": str(uuid.uuid4()), "duration_ms": 3100}
    first = client.post(f"/api/v1/tasks/{task['id']}/annotations/", payload, format="json")
    retry = client.post(f"/api/v1/tasks/{task['id']}/annotations/", payload, format="json")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json() == retry.json()
    body = first.json()
    assert body["annotator"] == "bob" and body["mode"] == "rate" and body["task"] == task["id"]
    assert body["value"] == {"rating": 4, "comment": "ok"} and body["duration_ms"] == 3100
    assert body["client_id"] == payload["client_id"]
    assert Annotation.objects.count() == 1


def test_invalid_answer_is_a_400_that_stores_nothing(api_client_for, annotator, compare_project):
    client = api_client_for(annotator)
    task = client.get(f"/api/v1/projects/{compare_project.pk}/tasks/next/?mode=rate").json()
    response = client.post(
        f"/api/v1/tasks/{task['id']}/annotations/",
        {"value": {"rating": 9}, "client_id": str(uuid.uuid4())},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "Choose a rating from 1 to 5.",
        "details": [{"field": "value.rating", "message": "Choose a rating from 1 to 5."}],
    }
    assert not Annotation.objects.exists()


def test_a_full_task_answers_409(api_client_for, admin_user, annotator, compare_project):
    task = tasks_of(compare_project, "rate")[0]
    admin = api_client_for(admin_user)
    assert (
        admin.post(
            f"/api/v1/tasks/{task.pk}/annotations/",
            {"value": {"rating": 2}, "client_id": str(uuid.uuid4())},
            format="json",
        ).status_code
        == 201
    )
    late = api_client_for(annotator).post(
        f"/api/v1/tasks/{task.pk}/annotations/",
        {"value": {"rating": 5}, "client_id": str(uuid.uuid4())},
        format="json",
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "task_full"
    assert "already has its 1 annotation(s); your answer was not stored" in late.json()["error"]["message"]


def test_skip_sends_the_task_behind_the_rest(api_client_for, annotator, compare_project):
    client = api_client_for(annotator)
    url = f"/api/v1/projects/{compare_project.pk}/tasks/next/?mode=rate"
    first = client.get(url).json()["id"]
    skipped = client.post(f"/api/v1/tasks/{first}/skip/", {"reason": "unclear"}, format="json")
    assert skipped.status_code == 200 and skipped.json() == {"task": first, "skipped": True}
    assert client.get(url).json()["id"] != first


def test_outsiders_cannot_see_or_answer_tasks(api_client_for, outsider, compare_project):
    client = api_client_for(outsider)
    task = tasks_of(compare_project, "rate")[0]
    assert client.get(f"/api/v1/projects/{compare_project.pk}/tasks/next/?mode=rate").status_code == 404
    posted = client.post(
        f"/api/v1/tasks/{task.pk}/annotations/",
        {"value": {"rating": 3}, "client_id": str(uuid.uuid4())},
        format="json",
    )
    assert posted.status_code == 404
    assert client.post(f"/api/v1/tasks/{task.pk}/skip/", {}, format="json").status_code == 404
    assert client.get(f"/api/v1/projects/{compare_project.pk}/annotations/").status_code == 404
    assert api_client_for().get(f"/api/v1/projects/{compare_project.pk}/tasks/next/").status_code == 401


def test_annotation_list_filters_and_fields(api_client_for, admin_user, annotator, compare_project):
    rate_tasks = tasks_of(compare_project, "rate")
    compare_task = tasks_of(compare_project, "compare")[0]
    admin, bob = api_client_for(admin_user), api_client_for(annotator)
    for client, task, value in [
        (bob, rate_tasks[0], {"rating": 5}),
        (admin, rate_tasks[1], {"rating": 1}),
        (bob, compare_task, {"choice": "tie"}),
    ]:
        response = client.post(
            f"/api/v1/tasks/{task.pk}/annotations/",
            {"value": value, "client_id": str(uuid.uuid4())},
            format="json",
        )
        assert response.status_code == 201, response.json()
    url = f"/api/v1/projects/{compare_project.pk}/annotations/"
    everything = admin.get(url).json()
    assert everything["count"] == 3
    assert set(everything["results"][0]) == {
        "id",
        "task",
        "mode",
        "annotator",
        "value",
        "client_id",
        "duration_ms",
        "created_at",
    }
    by_bob = admin.get(url, {"annotator": "bob", "mode": "rate"}).json()["results"]
    assert [(a["annotator"], a["value"]) for a in by_bob] == [("bob", {"rating": 5, "comment": ""})]
    today = timezone.localdate().isoformat()
    assert admin.get(url, {"date": today}).json()["count"] == 3
    assert admin.get(url, {"date": "2001-01-01"}).json()["count"] == 0
    bad = admin.get(url, {"date": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "date is a date like 2025-01-31."
    # An annotator sees only their own answers.
    assert {a["annotator"] for a in bob.get(url).json()["results"]} == {"bob"}
    assert bob.get(url).json()["count"] == 2
