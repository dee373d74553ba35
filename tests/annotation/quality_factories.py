"""Builders for quality tests: projects whose tasks are made by the real services, and answers
stored as the review queue stores them (Annotation rows plus the task's count and status)."""

import uuid
from datetime import timedelta

from django.utils import timezone

from annotation.models import Annotation, Item, Membership, ReviewTask, Role, TaskStatus
from annotation.services.candidates import candidates_create
from annotation.services.projects import project_create


def quality_project(*, admin, members=(), **data):
    """A project; `members` are (user, role) pairs."""
    defaults = {"name": "Quality", "task_type": "instruction", "modes": ["rate"], "overlap": 2}
    project = project_create(user=admin, data={**defaults, **data})
    for user, role in members:
        Membership.objects.create(project=project, user=user, role=role)
    return project


def items_with(project, count, *, models=("m0",), texts=None, text="Some input text here.", label=None):
    """`count` items, each with one candidate per model; answers the items."""
    items = [Item.objects.create(project=project, prompt=f"Question {n}?", text=text) for n in range(count)]
    rows = [
        {
            "item": it.pk,
            "text": (texts or {}).get(model, f"Answer by {model}."),
            "label": label,
            "model": model,
        }
        for it in items
        for model in models
    ]
    candidates_create(project=project, rows=rows, user=project.created_by)
    return items


def tasks(project, mode):
    return list(ReviewTask.objects.filter(project=project, mode=mode).order_by("id"))


def answer(task, user, value, *, duration_ms=20_000, at=None):
    """Stores one answer the way annotation_submit leaves the database."""
    columns = {}
    if task.mode == "rate":
        columns["rating"] = value["rating"]
    if task.mode == "compare":
        columns["choice"] = value["choice"]
    annotation = Annotation.objects.create(
        task=task,
        annotator=user,
        mode=task.mode,
        value=value,
        client_id=uuid.uuid4(),
        duration_ms=duration_ms,
        **columns,
    )
    if at is not None:
        Annotation.objects.filter(pk=annotation.pk).update(created_at=at)
    task.refresh_from_db()
    task.annotation_count += 1
    if task.annotation_count >= task.overlap:
        task.status, task.completed_at = TaskStatus.DONE, at or timezone.now()
    task.save(update_fields=["annotation_count", "status", "completed_at"])
    return annotation


def days_ago(n: int):
    return timezone.now() - timedelta(days=n)


ANNOTATOR = Role.ANNOTATOR
REVIEWER = Role.REVIEWER
