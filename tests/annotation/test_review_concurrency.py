"""Many annotators racing for tasks on the real PostgreSQL, each thread on its own connection:
nobody shares a slot, nobody answers a task twice, every task ends with exactly `overlap` answers."""

import threading
import uuid
from collections import Counter, defaultdict

import pytest
from django.db import connection

from annotation.models import Annotation, ReviewTask, TaskLease, TaskStatus
from annotation.services.review import annotation_submit, review_task_next

from .review_factories import items_with_candidates, queue_project

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12


def run_threads(target, count):
    barrier = threading.Barrier(count)
    errors = []

    def worker(index):
        try:
            barrier.wait(timeout=30)
            target(index)
        except Exception as exc:  # reported below: a failure in a thread must fail the test
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


@pytest.fixture
def crowd(make_user, admin_user):
    return [make_user(f"annotator{n}") for n in range(THREADS)]


def test_simultaneous_claims_never_share_a_slot(admin_user, crowd):
    project = queue_project(admin=admin_user, annotators=crowd, overlap=1)
    items_with_candidates(project, THREADS, texts=("A.",))
    got = {}

    def claim(index):
        task = review_task_next(project=project, user=crowd[index], mode="rate")
        got[index] = task.pk if task else None

    run_threads(claim, THREADS)
    assert None not in got.values()
    assert len(set(got.values())) == THREADS
    assert TaskLease.objects.count() == THREADS


def test_racing_annotators_fill_every_task_to_exactly_its_overlap(admin_user, crowd):
    overlap, tasks = 3, 40
    project = queue_project(admin=admin_user, annotators=crowd, overlap=overlap)
    items_with_candidates(project, tasks, texts=("A.",))
    served = defaultdict(list)
    conflicts = []

    def work(index):
        user = crowd[index]
        for _ in range(tasks + 1):  # bounded: nobody can answer more than every task once
            task = review_task_next(project=project, user=user, mode="rate")
            if task is None:
                return
            served[task.pk].append(user.username)
            try:
                annotation_submit(task=task, user=user, value={"rating": 3}, client_id=uuid.uuid4())
            except Exception as exc:  # a refused submit would mean a slot was handed out twice
                conflicts.append(repr(exc))

    run_threads(work, THREADS)
    assert conflicts == []
    bad = {pk: users for pk, users in served.items() if not len(users) == len(set(users)) == overlap}
    assert bad == {}
    assert len(served) == tasks
    per_task = Counter(Annotation.objects.values_list("task_id", flat=True))
    assert set(per_task.values()) == {overlap} and len(per_task) == tasks
    assert Annotation.objects.values("task_id", "annotator_id").distinct().count() == overlap * tasks
    assert not ReviewTask.objects.exclude(status=TaskStatus.DONE).exists()
    assert set(ReviewTask.objects.values_list("annotation_count", flat=True)) == {overlap}
    assert not TaskLease.objects.exists()
