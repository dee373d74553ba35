"""The claim keeps queue order across its two walks (tasks nobody answered, tasks some annotators
answered) when an annotator has many answered tasks still waiting for others, a claim whose
task filled up between its snapshot and its lock starts over without holding that task, and a
claim PostgreSQL failed to break a deadlock is made again."""

import uuid

import pytest

from annotation.models import ReviewTask, TaskLease
from annotation.services import review as review_services
from annotation.services.review import annotation_submit, review_task_next

from .review_factories import items_with_candidates, queue_project, tasks_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user):
    return [make_user(name) for name in ("ann", "ben", "cat")]


def answer(task, user):
    annotation_submit(task=task, user=user, value={"rating": 4}, client_id=uuid.uuid4())


def test_many_answered_open_tasks_are_passed_over_in_queue_order(admin_user, people):
    ann, ben, _ = people
    project = queue_project(admin=admin_user, annotators=people, overlap=2)
    items_with_candidates(project, 40, texts=("A.",))
    tasks = tasks_of(project, "rate")
    served = []
    for _ in range(30):
        task = review_task_next(project=project, user=ann, mode="rate")
        served.append(task.pk)
        answer(task, ann)
    # Ann answered the first 30 in order; each waits for a second annotator.
    assert served == [t.pk for t in tasks[:30]]
    # Ann goes on with the first task nobody answered.
    assert review_task_next(project=project, user=ann, mode="rate").pk == tasks[30].pk
    # Ben gets Ann's answered tasks first (queue order), never the one Ann holds.
    task = review_task_next(project=project, user=ben, mode="rate")
    assert task.pk == tasks[0].pk
    answer(task, ben)
    assert ReviewTask.objects.get(pk=tasks[0].pk).status == "done"


def test_a_started_task_before_the_first_fresh_one_comes_first(admin_user, people):
    ann, ben, cat = people
    project = queue_project(admin=admin_user, annotators=people, overlap=2)
    items_with_candidates(project, 6, texts=("A.",))
    tasks = tasks_of(project, "rate")
    # Ben answers task 0: it is started, the rest are fresh.
    answer(review_task_next(project=project, user=ben, mode="rate"), ben)
    ReviewTask.objects.filter(pk__in=[t.pk for t in tasks[3:]]).update(priority=-1)
    # Priority -1 puts the fresh tasks 3..5 before task 0: Ann takes them first, then task 0.
    order = []
    for _ in range(5):
        task = review_task_next(project=project, user=ann, mode="rate")
        order.append(task.pk)
        answer(task, ann)
    assert order == [tasks[3].pk, tasks[4].pk, tasks[5].pk, tasks[0].pk, tasks[1].pk]
    # Cat gets the started tasks, earliest in queue order first, none that is done.
    assert review_task_next(project=project, user=cat, mode="rate").pk == tasks[3].pk


def test_a_claim_that_finds_its_task_full_starts_over_without_it(admin_user, people, monkeypatch):
    ann, ben, _ = people
    project = queue_project(admin=admin_user, annotators=people, overlap=1)
    items_with_candidates(project, 3, texts=("A.",))
    tasks = tasks_of(project, "rate")
    real_take = review_services._lease_take
    calls = []

    def take_after_ben(*, task_id, user, now):
        # Ben's lease lands between Ann's snapshot and her lock on the first task.
        if not calls:
            TaskLease.objects.create(
                task_id=task_id, user=ben, expires_at=now + review_services.lease_duration()
            )
        calls.append(task_id)
        return real_take(task_id=task_id, user=user, now=now)

    monkeypatch.setattr(review_services, "_lease_take", take_after_ben)
    task = review_task_next(project=project, user=ann, mode="rate")
    assert calls == [tasks[0].pk, tasks[1].pk]
    assert task.pk == tasks[1].pk
    # The first attempt was rolled back, Ben's lease with it (it was written in that attempt).
    assert set(TaskLease.objects.values_list("task_id", "user_id")) == {(tasks[1].pk, ann.pk)}


def _database_error(sqlstate: str):
    """What Django raises for a PostgreSQL error: its OperationalError, caused by psycopg's."""
    from django.db import OperationalError

    cause = Exception("from the server")
    cause.sqlstate = sqlstate
    error = OperationalError("deadlock detected" if sqlstate == "40P01" else "something else")
    error.__cause__ = cause
    return error


def test_a_claim_chosen_as_a_deadlock_victim_is_made_again(admin_user, people, monkeypatch):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=people, overlap=1)
    items_with_candidates(project, 2, texts=("A.",))
    real_once = review_services._next_once
    attempts = []

    def deadlocked_first(**kwargs):
        attempts.append(kwargs["user"].pk)
        if len(attempts) == 1:
            raise _database_error("40P01")
        return real_once(**kwargs)

    monkeypatch.setattr(review_services, "_next_once", deadlocked_first)
    task = review_task_next(project=project, user=ann, mode="rate")
    assert task.pk == tasks_of(project, "rate")[0].pk and len(attempts) == 2
    assert list(TaskLease.objects.values_list("task_id", "user_id")) == [(task.pk, ann.pk)]


def test_other_database_errors_of_a_claim_are_not_retried(admin_user, people, monkeypatch):
    from django.db import OperationalError

    project = queue_project(admin=admin_user, annotators=people, overlap=1)
    items_with_candidates(project, 1, texts=("A.",))
    attempts = []

    def failing(**kwargs):
        attempts.append(1)
        raise _database_error("57P01")  # the server shut the connection

    monkeypatch.setattr(review_services, "_next_once", failing)
    with pytest.raises(OperationalError, match="something else"):
        review_task_next(project=project, user=people[0], mode="rate")
    assert attempts == [1]


def test_api_submit_checks_the_task_before_the_body(api_client_for, admin_user, people, outsider):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann], overlap=1)
    items_with_candidates(project, 1, texts=("A.",))
    task = tasks_of(project, "rate")[0]
    url = f"/api/v1/tasks/{task.pk}/annotations/"
    # Not a member: 404 whatever the body, nothing stored.
    response = api_client_for(outsider).post(url, [1, 2], format="json")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such task."
    response = api_client_for(ann).post("/api/v1/tasks/999999999/annotations/", {}, format="json")
    assert response.status_code == 404
    # A member: the body must be an object, then a client_id, then a valid value.
    client = api_client_for(ann)
    response = client.post(url, [1, 2], format="json")
    assert (response.status_code, response.json()["error"]["message"]) == (400, "Send a JSON object.")
    response = client.post(url, {"value": {"rating": 9}}, format="json")
    assert response.status_code == 400 and "client_id" in response.json()["error"]["message"]
    response = client.post(url, {"value": {"rating": 9}, "client_id": str(uuid.uuid4())}, format="json")
    assert response.status_code == 400 and "1 to 5" in response.json()["error"]["message"]
    assert not task.annotations.exists()
    client_id = str(uuid.uuid4())
    first = client.post(url, {"value": {"rating": 4}, "client_id": client_id}, format="json")
    again = client.post(url, {"value": {"rating": 4}, "client_id": client_id}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert ReviewTask.objects.get(pk=task.pk).status == "done"


def test_api_next_checks_membership_before_the_mode(api_client_for, admin_user, people, outsider):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann], overlap=1)
    items_with_candidates(project, 1, texts=("A.",))
    url = f"/api/v1/projects/{project.pk}/tasks/next/"
    assert api_client_for(outsider).get(url + "?mode=bogus").status_code == 404
    assert api_client_for(ann).get("/api/v1/projects/999999999/tasks/next/?mode=rate").status_code == 404
    response = api_client_for(ann).get(url + "?mode=bogus")
    assert response.status_code == 400 and "rate" in response.json()["error"]["message"]
    body = api_client_for(ann).get(url + "?mode=rate").json()
    assert body["id"] == tasks_of(project, "rate")[0].pk and body["project"] == project.pk
