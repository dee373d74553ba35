"""Builders for review-queue tests: projects with members, and items whose candidates become review
tasks through the real services (candidates_create -> review_tasks_sync)."""

from annotation.models import Item, Membership, ReviewTask, Role
from annotation.services.candidates import candidates_create
from annotation.services.projects import project_create


def queue_project(*, admin, annotators=(), **data):
    defaults = {"name": "Queue", "task_type": "instruction", "modes": ["rate"], "overlap": 1}
    project = project_create(user=admin, data={**defaults, **data})
    for user in annotators:
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
    return project


def items_with_candidates(project, count, *, texts=("First answer.", "Second answer."), label=None, **item):
    """`count` items, each with one candidate per entry of `texts`; answers the items."""
    items = [
        Item.objects.create(
            project=project, prompt=item.get("prompt", f"Question {n}?"), text=item.get("text", "")
        )
        for n in range(count)
    ]
    rows = [
        {"item": it.pk, "text": text, "label": label, "model": f"m{index}"}
        for it in items
        for index, text in enumerate(texts)
    ]
    candidates_create(project=project, rows=rows, user=project.created_by)
    return items


def tasks_of(project, mode):
    return list(ReviewTask.objects.filter(project=project, mode=mode).order_by("priority", "id"))
