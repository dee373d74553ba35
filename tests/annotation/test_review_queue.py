"""Who gets which task: overlap, leases, skips, pauses and assignments (services.review). Runs on
SQLite and on PostgreSQL."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import ItemAssignment, ItemStatus, Membership, ReviewTask, TaskLease, TaskStatus
from annotation.services.review import annotation_submit, review_task_next, task_skip
from synthlab.errors import Forbidden, ValidationFailed

from .review_factories import items_with_candidates, queue_project, tasks_of

pytestmark = pytest.mark.django_db


def answer(task, user, rating=4):
    return annotation_submit(task=task, user=user, value={"rating": rating}, client_id=uuid.uuid4())[0]


@pytest.fixture
def people(make_user):
    return [make_user(name) for name in ("ann", "ben", "cat", "dan")]


def test_overlap_three_gets_three_answers_from_three_annotators_then_closes(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people, overlap=3)
    (item,) = items_with_candidates(project, 1, texts=("Only answer.",))
    served = []
    for user in people[:3]:
        task = review_task_next(project=project, user=user, mode="rate")
        served.append(task.pk)
        answer(task, user)
    assert len(set(served)) == 1
    assert review_task_next(project=project, user=people[3], mode="rate") is None
    task = ReviewTask.objects.get(pk=served[0])
    assert (task.annotation_count, task.status) == (3, TaskStatus.DONE)
    assert sorted(task.annotations.values_list("annotator__username", flat=True)) == ["ann", "ben", "cat"]
    item.refresh_from_db()
    assert item.status == ItemStatus.DONE


def test_annotator_is_never_given_a_task_they_answered(admin_user, people):
    ann, ben = people[:2]
    project = queue_project(admin=admin_user, annotators=[ann, ben], overlap=2)
    items_with_candidates(project, 2, texts=("A.",))
    first = review_task_next(project=project, user=ann, mode="rate")
    answer(first, ann)
    second = review_task_next(project=project, user=ann, mode="rate")
    answer(second, ann)
    assert second.pk != first.pk
    assert review_task_next(project=project, user=ann, mode="rate") is None
    # Both tasks still wait for a second annotator, and ben gets them in queue order.
    assert review_task_next(project=project, user=ben, mode="rate").pk == first.pk


def test_a_leased_slot_is_not_given_to_a_second_annotator(admin_user, people):
    ann, ben, cat = people[:3]
    project = queue_project(admin=admin_user, annotators=[ann, ben, cat])
    items_with_candidates(project, 2, texts=("A.",))
    held = review_task_next(project=project, user=ann, mode="rate")
    other = review_task_next(project=project, user=ben, mode="rate")
    assert other.pk != held.pk
    assert review_task_next(project=project, user=cat, mode="rate") is None


def test_asking_again_resumes_the_task_you_hold(admin_user, people):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann])
    items_with_candidates(project, 3, texts=("A.",))
    first = review_task_next(project=project, user=ann, mode="rate")
    again = review_task_next(project=project, user=ann, mode="rate")
    assert again.pk == first.pk
    assert TaskLease.objects.filter(user=ann).count() == 1


def test_an_expired_lease_returns_the_task_to_the_queue(admin_user, people):
    ann, ben = people[:2]
    project = queue_project(admin=admin_user, annotators=[ann, ben])
    items_with_candidates(project, 1, texts=("A.",))
    held = review_task_next(project=project, user=ann, mode="rate")
    assert review_task_next(project=project, user=ben, mode="rate") is None
    TaskLease.objects.filter(user=ann).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert review_task_next(project=project, user=ben, mode="rate").pk == held.pk


def test_skipped_tasks_come_back_after_the_rest(admin_user, people):
    ann, ben = people[:2]
    project = queue_project(admin=admin_user, annotators=[ann, ben])
    items_with_candidates(project, 3, texts=("A.",))
    t1, t2, t3 = tasks_of(project, "rate")
    assert review_task_next(project=project, user=ann, mode="rate").pk == t1.pk
    task_skip(task=t1, user=ann, reason="Not sure")
    # The skip freed the slot: another annotator may take it at once.
    assert review_task_next(project=project, user=ben, mode="rate").pk == t1.pk
    task_skip(task=t1, user=ben)
    order = []
    while (task := review_task_next(project=project, user=ann, mode="rate")) is not None:
        order.append(task.pk)
        answer(task, ann)
    assert order == [t2.pk, t3.pk, t1.pk]
    assert t1.skips.get(user=ann).reason == "Not sure"


def test_paused_annotator_is_told_why(admin_user, people):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann])
    items_with_candidates(project, 1, texts=("A.",))
    Membership.objects.filter(user=ann).update(paused=True, paused_reason="gold accuracy 40% < 70%")
    with pytest.raises(Forbidden, match="gold accuracy 40% < 70%"):
        review_task_next(project=project, user=ann, mode="rate")


def test_a_mode_the_project_does_not_use_is_refused(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1])
    with pytest.raises(ValidationFailed, match="Choose a review mode this project uses: rate"):
        review_task_next(project=project, user=people[0], mode="compare")


def test_assigned_items_go_only_to_their_assignees(admin_user, people):
    ann, ben = people[:2]
    project = queue_project(admin=admin_user, annotators=[ann, ben])
    reserved, shared = items_with_candidates(project, 2, texts=("A.",))
    ItemAssignment.objects.create(item=reserved, user=ben)
    assert review_task_next(project=project, user=ann, mode="rate").item_id == shared.pk
    assert review_task_next(project=project, user=ann, mode="rate").item_id == shared.pk  # resumes
    assert review_task_next(project=project, user=ben, mode="rate").item_id == reserved.pk


def test_lower_priority_number_comes_first(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1])
    items_with_candidates(project, 3, texts=("A.",))
    last = tasks_of(project, "rate")[-1]
    ReviewTask.objects.filter(pk=last.pk).update(priority=-1)
    assert review_task_next(project=project, user=people[0], mode="rate").pk == last.pk


def test_compare_tasks_keep_the_order_they_were_created_with(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1], modes=["compare"])
    items_with_candidates(project, 1)
    stored = tasks_of(project, "compare")[0]
    served = review_task_next(project=project, user=people[0], mode="compare")
    assert (served.candidate_a_id, served.candidate_b_id) == (stored.candidate_a_id, stored.candidate_b_id)
    assert {served.candidate_a.text, served.candidate_b.text} == {"First answer.", "Second answer."}
