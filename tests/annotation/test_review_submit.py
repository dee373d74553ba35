"""Submitting answers: idempotency, expired leases, validation per mode, edits becoming human
candidates, drafts (services.review). Runs on SQLite and on PostgreSQL."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationDraft,
    Candidate,
    CandidateSource,
    Item,
    ItemStatus,
    TaskLease,
    TaskStatus,
)
from annotation.services.candidates import candidates_create
from annotation.services.review import annotation_submit, draft_save, review_task_next
from synthlab.errors import Conflict, ValidationFailed

from .review_factories import items_with_candidates, queue_project, tasks_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user):
    return [make_user(name) for name in ("ann", "ben", "cat")]


def expire(user):
    TaskLease.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_the_same_client_id_twice_stores_one_annotation_and_answers_it(admin_user, people):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann])
    items_with_candidates(project, 1, texts=("A.",))
    task = review_task_next(project=project, user=ann, mode="rate")
    client_id = str(uuid.uuid4())
    first, created = annotation_submit(
        task=task, user=ann, value={"rating": 5, "comment": " good "}, client_id=client_id, duration_ms=1200
    )
    again, created_again = annotation_submit(task=task, user=ann, value={"rating": 5}, client_id=client_id)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Annotation.objects.count() == 1
    assert (first.value, first.rating, first.duration_ms) == ({"rating": 5, "comment": "good"}, 5, 1200)
    task.refresh_from_db()
    assert (task.annotation_count, task.status) == (1, TaskStatus.DONE)
    assert not TaskLease.objects.exists()


def test_a_second_answer_with_a_new_client_id_is_refused(admin_user, people):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann], overlap=2)
    items_with_candidates(project, 1, texts=("A.",))
    task = review_task_next(project=project, user=ann, mode="rate")
    annotation_submit(task=task, user=ann, value={"rating": 2}, client_id=uuid.uuid4())
    with pytest.raises(Conflict, match="You already answered this task"):
        annotation_submit(task=task, user=ann, value={"rating": 3}, client_id=uuid.uuid4())
    assert Annotation.objects.count() == 1


def test_a_client_id_used_for_another_task_is_refused(admin_user, people):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann])
    items_with_candidates(project, 2, texts=("A.",))
    first, second = tasks_of(project, "rate")
    client_id = uuid.uuid4()
    annotation_submit(task=first, user=ann, value={"rating": 2}, client_id=client_id)
    with pytest.raises(Conflict, match="make a new UUID for each answer"):
        annotation_submit(task=second, user=ann, value={"rating": 3}, client_id=client_id)


def test_a_submit_after_the_lease_expired_counts_when_the_slot_is_free(admin_user, people):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann])
    items_with_candidates(project, 1, texts=("A.",))
    task = review_task_next(project=project, user=ann, mode="rate")
    expire(ann)
    annotation, created = annotation_submit(task=task, user=ann, value={"rating": 3}, client_id=uuid.uuid4())
    assert created and annotation.rating == 3


def test_a_late_submit_to_a_full_task_is_refused_and_stores_nothing(admin_user, people):
    ann, ben = people[:2]
    project = queue_project(admin=admin_user, annotators=[ann, ben])
    items_with_candidates(project, 1, texts=("A.",))
    task = review_task_next(project=project, user=ann, mode="rate")
    expire(ann)
    taken = review_task_next(project=project, user=ben, mode="rate")
    annotation_submit(task=taken, user=ben, value={"rating": 4}, client_id=uuid.uuid4())
    with pytest.raises(Conflict, match="already has its 1 annotation"):
        annotation_submit(task=task, user=ann, value={"rating": 1}, client_id=uuid.uuid4())
    assert list(Annotation.objects.values_list("annotator__username", flat=True)) == ["ben"]


def test_a_late_submit_is_refused_while_another_annotator_holds_the_last_slot(admin_user, people):
    ann, ben = people[:2]
    project = queue_project(admin=admin_user, annotators=[ann, ben])
    items_with_candidates(project, 1, texts=("A.",))
    task = review_task_next(project=project, user=ann, mode="rate")
    expire(ann)
    assert review_task_next(project=project, user=ben, mode="rate").pk == task.pk
    with pytest.raises(Conflict, match="other annotators now hold its remaining slot"):
        annotation_submit(task=task, user=ann, value={"rating": 1}, client_id=uuid.uuid4())
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    "value,message",
    [
        ({"rating": 0}, "Choose a rating from 1 to 5."),
        ({"rating": 6}, "Choose a rating from 1 to 5."),
        ({"rating": "high"}, "Choose a rating from 1 to 5."),
        ({"rating": True}, "Choose a rating from 1 to 5."),
        ({}, "Choose a rating from 1 to 5."),
        ({"rating": 3, "stars": 3}, "Unknown field 'stars' for a rate task; send rating, comment."),
        ({"rating": 3, "comment": 7}, "The comment must be text."),
        ("4", 'Send the answer as an object in "value"'),
    ],
)
def test_invalid_ratings_get_a_clear_message_and_store_nothing(admin_user, people, value, message):
    project = queue_project(admin=admin_user, annotators=people[:1])
    items_with_candidates(project, 1, texts=("A.",))
    task = review_task_next(project=project, user=people[0], mode="rate")
    with pytest.raises(ValidationFailed) as raised:
        annotation_submit(task=task, user=people[0], value=value, client_id=uuid.uuid4())
    assert raised.value.message.startswith(message)
    assert not Annotation.objects.exists()
    task.refresh_from_db()
    assert task.annotation_count == 0


def test_client_id_and_duration_are_checked(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1])
    items_with_candidates(project, 1, texts=("A.",))
    task = tasks_of(project, "rate")[0]
    with pytest.raises(ValidationFailed, match="Send a client_id"):
        annotation_submit(task=task, user=people[0], value={"rating": 3}, client_id="not-a-uuid")
    with pytest.raises(ValidationFailed, match="duration_ms is the time spent"):
        annotation_submit(
            task=task, user=people[0], value={"rating": 3}, client_id=uuid.uuid4(), duration_ms=-5
        )
    assert not Annotation.objects.exists()


def test_compare_choices(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1], modes=["compare"])
    items_with_candidates(project, 1)
    task = review_task_next(project=project, user=people[0], mode="compare")
    with pytest.raises(ValidationFailed, match="Choose a, b, tie or both_bad."):
        annotation_submit(task=task, user=people[0], value={"choice": "c"}, client_id=uuid.uuid4())
    annotation, _ = annotation_submit(
        task=task,
        user=people[0],
        value={"choice": "both_bad", "reason": "Both wrong"},
        client_id=uuid.uuid4(),
    )
    assert (annotation.choice, annotation.value["reason"]) == ("both_bad", "Both wrong")


def test_an_edit_becomes_a_human_candidate_whose_parent_is_the_draft(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1], modes=["edit"])
    (item,) = items_with_candidates(project, 1, texts=("Paris is the capitol of France.",))
    task = review_task_next(project=project, user=people[0], mode="edit")
    with pytest.raises(ValidationFailed, match="The edited text is empty"):
        annotation_submit(task=task, user=people[0], value={"text": "   "}, client_id=uuid.uuid4())
    annotation, _ = annotation_submit(
        task=task, user=people[0], value={"text": "Paris is the capital of France."}, client_id=uuid.uuid4()
    )
    human = Candidate.objects.get(source=CandidateSource.HUMAN)
    assert human.parent_id == task.candidate_a_id and human.item_id == item.pk
    assert human.text == "Paris is the capital of France." and human.created_by == people[0]
    assert annotation.result_candidate_id == human.pk and annotation.value["candidate"] == human.pk
    # A human candidate is an answer, not a new question: no review task is made for it.
    assert project.tasks.count() == 1


@pytest.fixture
def labelled(admin_user, people):
    project = queue_project(
        admin=admin_user,
        annotators=people[:1],
        task_type="classification",
        labels=["positive", "negative", "neutral"],
        modes=["label"],
    )
    item = Item.objects.create(project=project, text="What a lovely day")
    candidates_create(
        project=project,
        rows=[{"item": item.pk, "label": "positive", "scores": {"confidence": 0.91}}],
    )
    return project


def test_classification_labels_come_from_the_project(labelled, people):
    task = review_task_next(project=labelled, user=people[0], mode="label")
    assert task.candidate_a.label == "positive"
    for value, message in [
        (
            {"labels": ["happy"]},
            "Unknown label 'happy'; this project's labels are: positive, negative, neutral.",
        ),
        ({"labels": []}, "Choose a label: positive, negative, neutral."),
        ({"labels": ["positive", "neutral"]}, "Choose one label"),
    ]:
        with pytest.raises(ValidationFailed) as raised:
            annotation_submit(task=task, user=people[0], value=value, client_id=uuid.uuid4())
        assert raised.value.message.startswith(message)
    annotation, _ = annotation_submit(
        task=task, user=people[0], value={"labels": ["neutral"]}, client_id=uuid.uuid4()
    )
    assert annotation.value == {"labels": ["neutral"]}


def test_multi_label_projects_take_several_labels(labelled, people):
    labelled.options = {"multi_label": True}
    labelled.save()
    task = review_task_next(project=labelled, user=people[0], mode="label")
    annotation, _ = annotation_submit(
        task=task, user=people[0], value={"labels": ["positive", "neutral"]}, client_id=uuid.uuid4()
    )
    assert annotation.value == {"labels": ["positive", "neutral"]}


@pytest.fixture
def ner(admin_user, people):
    project = queue_project(
        admin=admin_user, annotators=people[:1], task_type="ner", labels=["PER", "LOC"], modes=["label"]
    )
    Item.objects.create(project=project, text="Ada Lovelace was born in London.")
    candidates_create(
        project=project,
        rows=[{"item": project.items.get().pk, "label": [{"start": 0, "end": 12, "label": "PER"}]}],
    )
    return project


@pytest.mark.parametrize(
    "spans,message",
    [
        (
            [{"start": 25, "end": 40, "label": "LOC"}],
            "Span 1 (25-40) is outside the text, which has 32 characters.",
        ),
        ([{"start": 0, "end": 3, "label": "ORG"}], "Span 1: unknown label 'ORG'."),
        (
            [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "PER"}],
            "Spans 0-12 and 4-12 overlap; this project does not allow overlapping spans.",
        ),
        ([{"start": "0", "end": 3, "label": "PER"}], "Span 1: start and end are character offsets"),
        ("Ada", "Spans must be a list"),
    ],
)
def test_ner_spans_must_lie_inside_the_text_and_not_overlap(ner, people, spans, message):
    task = review_task_next(project=ner, user=people[0], mode="label")
    with pytest.raises(ValidationFailed) as raised:
        annotation_submit(task=task, user=people[0], value={"spans": spans}, client_id=uuid.uuid4())
    assert raised.value.message.startswith(message)
    assert not Annotation.objects.exists()


def test_ner_spans_are_stored_with_the_text_they_cover(ner, people):
    task = review_task_next(project=ner, user=people[0], mode="label")
    spans = [{"start": 25, "end": 31, "label": "LOC"}, {"start": 0, "end": 12, "label": "PER"}]
    annotation, _ = annotation_submit(
        task=task, user=people[0], value={"spans": spans}, client_id=uuid.uuid4()
    )
    assert annotation.value["spans"] == [
        {"start": 0, "end": 12, "label": "PER", "text": "Ada Lovelace"},
        {"start": 25, "end": 31, "label": "LOC", "text": "London"},
    ]


def test_overlapping_spans_where_the_project_allows_them(ner, people):
    ner.allow_overlapping_spans = True
    ner.save()
    task = review_task_next(project=ner, user=people[0], mode="label")
    spans = [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "PER"}]
    annotation, _ = annotation_submit(
        task=task, user=people[0], value={"spans": spans}, client_id=uuid.uuid4()
    )
    assert len(annotation.value["spans"]) == 2


def test_item_is_done_when_its_last_task_is(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1], modes=["rate", "edit"])
    (item,) = items_with_candidates(project, 1, texts=("A.",))
    assert Item.objects.get().status == ItemStatus.IN_REVIEW
    rate = review_task_next(project=project, user=people[0], mode="rate")
    annotation_submit(task=rate, user=people[0], value={"rating": 4}, client_id=uuid.uuid4())
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_REVIEW
    edit = review_task_next(project=project, user=people[0], mode="edit")
    annotation_submit(task=edit, user=people[0], value={"text": "B."}, client_id=uuid.uuid4())
    item.refresh_from_db()
    assert item.status == ItemStatus.DONE


def test_a_draft_is_kept_renews_the_lease_and_goes_on_submit(admin_user, people):
    ann = people[0]
    project = queue_project(admin=admin_user, annotators=[ann], modes=["edit"])
    items_with_candidates(project, 1, texts=("Draft text.",))
    task = review_task_next(project=project, user=ann, mode="edit")
    TaskLease.objects.filter(user=ann).update(expires_at=timezone.now() + timedelta(seconds=5))
    draft_save(task=task, user=ann, value={"text": "Half-edited", "csrfmiddlewaretoken": "x"})
    draft_save(task=task, user=ann, value={"text": "Half-edited text."})
    assert AnnotationDraft.objects.get().value == {"text": "Half-edited text."}
    lease = TaskLease.objects.get(user=ann)
    assert lease.expires_at > timezone.now() + timedelta(minutes=5)
    annotation_submit(task=task, user=ann, value={"text": "Edited text."}, client_id=uuid.uuid4())
    assert not AnnotationDraft.objects.exists()
    with pytest.raises(Conflict, match="You already answered this task"):
        draft_save(task=task, user=ann, value={"text": "again"})


def test_time_spent_defaults_to_the_time_since_the_task_was_given(admin_user, people):
    project = queue_project(admin=admin_user, annotators=people[:1])
    items_with_candidates(project, 1, texts=("A.",))
    task = review_task_next(project=project, user=people[0], mode="rate")
    TaskLease.objects.update(created_at=timezone.now() - timedelta(seconds=42))
    annotation, _ = annotation_submit(task=task, user=people[0], value={"rating": 3}, client_id=uuid.uuid4())
    assert 42_000 <= annotation.duration_ms < 60_000
