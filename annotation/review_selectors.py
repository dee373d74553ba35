"""Reads for the review queue: a task the user may see, their progress, the live counts an admin
watches, annotation lists. Nothing here writes; leasing is a write and lives in services.review."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from synthlab import prepared, rawrows
from synthlab.errors import NotFound, ValidationFailed

from .models import (
    Annotation,
    AnnotationDraft,
    Candidate,
    Item,
    Membership,
    Project,
    ReviewMode,
    ReviewTask,
    Role,
    TaskLease,
    TaskStatus,
)
from .selectors import role_at_least


def task_get(*, user, task_id, with_content: bool = True, lock: bool = False) -> ReviewTask:
    """A task of a project the user belongs to, with its project and (``with_content``) its item and
    candidates; else NotFound. The project carries ``current_role``. ``lock``: the task row is
    locked (FOR UPDATE) where the database has row locks; call it inside a transaction."""
    try:
        task_id = int(task_id)
    except (TypeError, ValueError):
        raise NotFound("No such task.") from None
    if not user.is_authenticated or not rawrows.id_in_range(task_id):
        raise NotFound("No such task.")
    # One hand-written statement (the task, its project, the user's role, and with_content its item
    # and candidates): submits and skips start here, and the ORM's joins cost more CPU to build than
    # PostgreSQL takes to run them.
    quote = connection.ops.quote_name
    tables = {m: quote(m._meta.db_table) for m in (ReviewTask, Project, Membership, Item, Candidate)}
    select = [rawrows.columns(ReviewTask, "t"), rawrows.columns(Project, "p")]
    joins = [f"JOIN {tables[Project]} p ON p.id = t.project_id"]
    if with_content:
        select += [
            rawrows.columns(Item, "i"),
            rawrows.columns(Candidate, "ca"),
            rawrows.columns(Candidate, "cb"),
        ]
        joins += [
            f"JOIN {tables[Item]} i ON i.id = t.item_id",
            f"LEFT JOIN {tables[Candidate]} ca ON ca.id = t.candidate_a_id",
            f"LEFT JOIN {tables[Candidate]} cb ON cb.id = t.candidate_b_id",
        ]
    sql = (
        f"SELECT (SELECT m.role FROM {tables[Membership]} m WHERE m.project_id = t.project_id"
        f" AND m.user_id = %s ORDER BY m.id LIMIT 1), {', '.join(select)} FROM {tables[ReviewTask]} t"
        f" {' '.join(joins)} WHERE t.id = %s"
    )
    if lock and connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF t"
    with prepared.cursor() as cursor:
        cursor.execute(sql, [user.pk, task_id])
        row = cursor.fetchone()
    if row is None or row[0] is None:
        raise NotFound("No such task.")
    task = rawrows.instance(ReviewTask, "t", row, 1)
    at = 1 + rawrows.width(ReviewTask)
    task.project = rawrows.instance(Project, "p", row, at)
    if with_content:
        at += rawrows.width(Project)
        task.item = rawrows.instance(Item, "i", row, at)
        at += rawrows.width(Item)
        task.candidate_a = rawrows.instance(Candidate, "ca", row, at)
        task.candidate_b = rawrows.instance(Candidate, "cb", row, at + rawrows.width(Candidate))
    task.member_role = row[0]
    task.project.current_role = row[0]
    return task


def draft_get(*, task: ReviewTask, user) -> dict | None:
    return AnnotationDraft.objects.filter(task=task, user=user).values_list("value", flat=True).first()


def annotation_get(*, task: ReviewTask, user) -> Annotation | None:
    return Annotation.objects.filter(task=task, annotator=user).first()


def lease_get(*, task: ReviewTask, user):
    """The user's unexpired lease on the task, or None."""
    return TaskLease.objects.filter(task=task, user=user, expires_at__gt=timezone.now()).first()


def today_start() -> dt.datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def queue_progress(*, project: Project, user) -> dict[str, dict]:
    """Per mode of the project: what the user answered today, and how many open tasks they have not
    answered yet (``remaining``)."""
    since = today_start()
    done_today = dict(
        Annotation.objects.filter(task__project=project, annotator=user, created_at__gte=since)
        .values_list("mode")
        .annotate(n=Count("pk"))
        .values_list("mode", "n")
    )
    open_total = dict(
        ReviewTask.objects.filter(project=project, status=TaskStatus.OPEN)
        .values_list("mode")
        .annotate(n=Count("pk"))
        .values_list("mode", "n")
    )
    answered_open = dict(
        Annotation.objects.filter(task__project=project, annotator=user, task__status=TaskStatus.OPEN)
        .values_list("mode")
        .annotate(n=Count("pk"))
        .values_list("mode", "n")
    )
    return {
        mode: {
            "mode": mode,
            "label": ReviewMode(mode).label,
            "done_today": done_today.get(mode, 0),
            "remaining": max(open_total.get(mode, 0) - answered_open.get(mode, 0), 0),
        }
        for mode in project.modes
    }


def queue_counts(*, project: Project) -> dict:
    """What an admin watches live: per mode, tasks open (nobody holds them), leased (someone holds
    a slot) and done; per annotator, answers in the last hour, today and in all, and median time."""
    now = timezone.now()
    by_status = {
        (mode, status): n
        for mode, status, n in ReviewTask.objects.filter(project=project)
        .values_list("mode", "status")
        .annotate(n=Count("pk"))
        .values_list("mode", "status", "n")
    }
    leased = dict(
        TaskLease.objects.filter(task__project=project, task__status=TaskStatus.OPEN, expires_at__gt=now)
        .values_list("task__mode")
        .annotate(n=Count("task", distinct=True))
        .values_list("task__mode", "n")
    )
    modes = []
    for mode in dict.fromkeys([*project.modes, *(m for m, _ in by_status)]):
        open_n = by_status.get((mode, TaskStatus.OPEN), 0)
        modes.append(
            {
                "mode": mode,
                "label": ReviewMode(mode).label if mode in ReviewMode.values else mode,
                "open": open_n - leased.get(mode, 0),
                "leased": leased.get(mode, 0),
                "done": by_status.get((mode, TaskStatus.DONE), 0),
            }
        )
    hour_ago, since = now - dt.timedelta(hours=1), today_start()
    annotators = list(
        Annotation.objects.filter(task__project=project)
        .values("annotator__username")
        .annotate(
            total=Count("pk"),
            today=Count("pk", filter=Q(created_at__gte=since)),
            last_hour=Count("pk", filter=Q(created_at__gte=hour_ago)),
        )
        .order_by("-last_hour", "-today", "annotator__username")
    )
    return {
        "modes": modes,
        "annotators": [
            {
                "username": row["annotator__username"],
                "total": row["total"],
                "today": row["today"],
                "last_hour": row["last_hour"],
            }
            for row in annotators
        ],
        "at": now,
    }


def annotation_list(
    *,
    project: Project,
    user,
    mode: str | None = None,
    annotator: str | None = None,
    date: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> QuerySet[Annotation]:
    """Annotations of the project, newest last. Annotators see only their own; reviewers and admins
    see everyone's. Dates are YYYY-MM-DD in the server's time zone, ``date_to`` inclusive."""
    annotations = Annotation.objects.filter(task__project=project).select_related("annotator")
    if not role_at_least(project.current_role, Role.REVIEWER):
        annotations = annotations.filter(annotator=user)
    if mode:
        if mode not in ReviewMode.values:
            raise ValidationFailed(
                f"mode is one of: {', '.join(ReviewMode.values)}.",
                details=[{"field": "mode", "message": "Unknown mode."}],
            )
        annotations = annotations.filter(mode=mode)
    if annotator:
        annotations = annotations.filter(annotator__username=annotator)
    day = dt.timedelta(days=1)
    if date:
        start = _day_start(date, "date")
        annotations = annotations.filter(created_at__gte=start, created_at__lt=start + day)
    if date_from:
        annotations = annotations.filter(created_at__gte=_day_start(date_from, "date_from"))
    if date_to:
        annotations = annotations.filter(created_at__lt=_day_start(date_to, "date_to") + day)
    return annotations.order_by("id")


def _day_start(value: str, field: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{field} is a date like 2025-01-31.", details=[{"field": field, "message": "Not a date."}]
        ) from None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
