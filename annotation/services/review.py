"""The review queue: leasing the next task, submitting answers, skipping, drafts.

Rules the queue keeps, on PostgreSQL and on SQLite:

- A task with overlap N gets exactly N annotations from N different annotators; no annotator is given
  a task they answered. A slot is taken by an annotation or by another annotator's unexpired lease.
- Claiming locks the task row with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL), then counts
  the slots again in a fresh statement: the first query's snapshot may predate a lease that another
  claimer committed just before we locked the row. Every lease is written while its task row is
  locked, so the recount sees all of them. On SQLite ``select_for_update`` is a no-op, but the
  connection opens every transaction with ``BEGIN IMMEDIATE``, so claims and submits run one at a
  time and the same code is correct.
- Submitting is idempotent on ``client_id`` and counts even after the lease expired, as long as a
  slot is free.

Events for the admin's live counts go out after commit, from ``queue_event_send`` only.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
import uuid
from datetime import timedelta
from functools import cache, partial

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from synthlab import prepared, rawrows
from synthlab.errors import Conflict, Forbidden, NotFound, ValidationFailed

from ..models import (
    Annotation,
    AnnotationDraft,
    Candidate,
    CandidateSource,
    CompareChoice,
    Item,
    ItemAssignment,
    ItemStatus,
    Membership,
    Project,
    ReviewMode,
    ReviewTask,
    TaskLease,
    TaskSkip,
    TaskStatus,
    TaskType,
)
from ..validation import labels_validate, spans_validate

MAX_NOTE_CHARS = 5_000
MAX_EDIT_CHARS = 200_000
MAX_DURATION_MS = 24 * 60 * 60 * 1000
# Claims started over when the task they locked turned out to be full (a lease committed between
# the claim's snapshot and its lock): each miss is rolled back, excluded, and the claim retried.
CLAIM_ATTEMPTS = 25
DRAFT_FIELDS = ("rating", "comment", "choice", "reason", "text", "labels", "spans")
MAX_DRAFT_CHARS = 250_000


def queue_group(project_id: int) -> str:
    return f"project-{project_id}"


# At most one queue event per project per process in this many seconds: through Redis each send
# costs about as much as the claim itself. The live-counts consumer reads the counts again
# EVENT_INTERVAL and more after each event, so changes whose events were held back still show.
EVENT_INTERVAL = 1.0
_event_sent_at: dict[int, float] = {}


def queue_event_send(*, project_id: int) -> None:
    """Tells the admins watching this project's queue that counts changed. The one place that sends
    queue events; services call it through ``transaction.on_commit``."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    now = time.monotonic()
    if now - _event_sent_at.get(project_id, -EVENT_INTERVAL) < EVENT_INTERVAL:
        return
    _event_sent_at[project_id] = now
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(queue_group(project_id), {"type": "queue.changed"})


def _after_commit_notify(project_id: int) -> None:
    transaction.on_commit(partial(queue_event_send, project_id=project_id))


@cache
def _quality():
    """The team-workflow services (gold tasks, webhooks, pauses) when this install has them."""
    name = f"{__package__}.quality"
    return importlib.import_module(name) if importlib.util.find_spec(name) else None


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.SYNTHLAB_LEASE_SECONDS)


def review_mode_validate(*, project: Project, mode: str | None) -> str:
    if mode not in project.modes:
        raise ValidationFailed(
            f"Choose a review mode this project uses: {', '.join(project.modes)}.",
            details=[{"field": "mode", "message": f"{mode!r} is not one of {', '.join(project.modes)}."}],
        )
    return mode


# --- Leasing ---------------------------------------------------------------------------------------


# The claim runs on every "next task", so its two statements are written out as SQL: built through
# the ORM they cost more CPU to assemble and compile (about 2.5 ms) than PostgreSQL takes to run
# them. Both read the same rule: a slot is free when annotations plus other annotators' unexpired
# leases are below the overlap.


def _tables() -> dict[str, str]:
    return _tables_for(connection.vendor)


@cache
def _tables_for(vendor: str) -> dict[str, str]:
    quote = connection.ops.quote_name
    models = {
        "task": ReviewTask,
        "lease": TaskLease,
        "annotation": Annotation,
        "assignment": ItemAssignment,
        "skip": TaskSkip,
        "draft": AnnotationDraft,
        "item": Item,
        "candidate": Candidate,
        "membership": Membership,
    }
    return {name: quote(model._meta.db_table) for name, model in models.items()}


def _claim_query(
    *,
    project_id: int,
    user_id: int,
    mode: str,
    now,
    skipped: bool,
    gold: bool | None,
    missed: list[int],
    skip_locked: bool = True,
    skips: bool = True,
    assignments: bool = True,
) -> tuple[str, list]:
    """The first task of the queue this user may take now, locked (SKIP LOCKED) on PostgreSQL.

    Open tasks of the mode in (priority, id) order, keeping those with a free slot, not answered by
    this user, whose item is assigned to nobody or to this user. `skipped`: only the tasks this
    user skipped, oldest skip first; otherwise only the ones they did not skip.

    Two index walks, each stopping at its first match, and the earlier of the two wins:

    - ``fresh``: tasks nobody answered yet (partial index task_queue_fresh). No probe of the user's
      answers is needed, and tasks that are already started are not in this index at all, so the
      walk does not grow with the number of tasks this user answered that still wait for others.
    - ``started``: tasks with some but not all answers (partial index task_queue_started), minus
      the ones this user answered. That set is what overlap leaves open behind the annotators; the
      user's own answers among it are removed by one hashed anti-join (their answers on task ids
      between the first and last started task of the project, one range of the (annotator, task)
      index; both ends from task_started_by_id) instead of one probe per task. This walk still
      passes over the started tasks this user answered, at about 0.6 us each instead of two
      subquery probes each.
    """
    t = _tables()
    now = connection.ops.adapt_datetimefield_value(now)
    # A literal, not a parameter: a prepared statement's generic plan can then use the partial
    # indexes, whose predicate says status = 'open'.
    open_ = f"'{TaskStatus.OPEN.value}'"
    leases = f"(SELECT COUNT(*) FROM {t['lease']} l WHERE l.task_id = t.id AND l.expires_at > %s AND l.user_id <> %s)"
    assignment = (
        f"(NOT EXISTS (SELECT 1 FROM {t['assignment']} s WHERE s.item_id = t.item_id)"
        f" OR EXISTS (SELECT 1 FROM {t['assignment']} s WHERE s.item_id = t.item_id AND s.user_id = %s))"
    )
    lock = ""
    if connection.features.has_select_for_update_skip_locked:
        lock = " FOR UPDATE OF t SKIP LOCKED" if skip_locked else " FOR UPDATE OF t"

    def walk(started: bool, locked: bool = True) -> tuple[str, list]:
        where = ["t.project_id = %s", "t.mode = %s", f"t.status = {open_}"]
        params: list = [project_id, mode]
        source, source_params, order = f"{t['task']} t", [], "t.priority, t.id"
        if started:
            where += ["t.annotation_count > 0", f"t.annotation_count < t.overlap - {leases}"]
            params += [now, user_id]
        else:
            where += ["t.annotation_count = 0", f"t.overlap > {leases}"]
            params += [now, user_id]
        if started and not skipped:
            # The user's own answers leave the walk through one hashed anti-join (their answers on
            # task ids between the first and last started task: one range of the (annotator, task)
            # index) instead of one probe per task; the lease count, costlier, runs only on the
            # tasks that pass it.
            bound = (
                f"(SELECT {{}}(f.id) FROM {t['task']} f WHERE f.project_id = %s AND f.mode = %s"
                f" AND f.status = {open_} AND f.annotation_count > 0)"
            )
            where.insert(
                4,
                f"t.id NOT IN (SELECT a.task_id FROM {t['annotation']} a WHERE a.annotator_id = %s"
                f" AND a.task_id BETWEEN {bound.format('MIN')} AND {bound.format('MAX')})",
            )
            params[2:2] = [user_id, *([project_id, mode] * 2)]
        elif started:
            # Skipped tasks: a walk over this user's few skips; the probe per task is cheap there.
            where.append(
                f"NOT EXISTS (SELECT 1 FROM {t['annotation']} a WHERE a.task_id = t.id AND a.annotator_id = %s)"
            )
            params.append(user_id)
        if assignments:
            where.append(assignment)
            params.append(user_id)
        if gold is not None:
            where.append("t.is_gold = %s")
            params.append(gold)
        if missed:
            where.append(f"t.id NOT IN ({', '.join(['%s'] * len(missed))})")
            params.extend(missed)
        if skipped:
            source = f"{t['task']} t JOIN {t['skip']} k ON k.task_id = t.id AND k.user_id = %s"
            source_params = [user_id]
            first = "k.created_at"
            order = f"{first}, {order}"
        else:
            if skips:
                where.append(
                    f"NOT EXISTS (SELECT 1 FROM {t['skip']} k WHERE k.task_id = t.id AND k.user_id = %s)"
                )
                params.append(user_id)
            first = "NULL"
        if started:
            # Only started tasks that come before the first fresh one.
            key = (
                "(b.k0, b.k1, b.id) <= (k.created_at, t.priority, t.id)"
                if skipped
                else ("(b.k1, b.id) <= (t.priority, t.id)")
            )
            where.append(f"NOT EXISTS (SELECT 1 FROM bound b WHERE {key})")
        sql = (
            f"SELECT {first} AS k0, t.priority AS k1, t.id AS id FROM {source} WHERE {' AND '.join(where)}"
            f" ORDER BY {order} LIMIT 1{lock if locked else ''}"
        )
        return sql, source_params + params

    # One row is locked, never two (a second lock held to the end of the claim could close a cycle
    # with another claimer's): `bound` finds the first fresh task without locking it; `started`
    # locks the first started task before it, if any; only when there is none does `fresh` lock
    # the first fresh task (UNION ALL under LIMIT 1 does not read its second branch otherwise).
    bound, bound_params = walk(False, locked=False)
    started, started_params = walk(True)
    fresh, fresh_params = walk(False)
    sql = (
        f"WITH bound AS ({bound}), started AS ({started}), fresh AS ({fresh})"
        " SELECT id FROM started UNION ALL SELECT id FROM fresh LIMIT 1"
    )
    return sql, bound_params + started_params + fresh_params


def _free_slots_now(*, task_id: int, user, now) -> tuple[int, bool]:
    """(free slots, answered by this user) in a fresh statement, after the task row is locked."""
    t = _tables()
    sql = (
        f"SELECT t.overlap - t.annotation_count - (SELECT COUNT(*) FROM {t['lease']} l"
        " WHERE l.task_id = t.id AND l.expires_at > %s AND l.user_id <> %s),"
        f" t.status, EXISTS (SELECT 1 FROM {t['annotation']} a WHERE a.task_id = t.id AND a.annotator_id = %s)"
        f" FROM {t['task']} t WHERE t.id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [connection.ops.adapt_datetimefield_value(now), user.pk, user.pk, task_id])
        free, status, answered = cursor.fetchone()
    return (free if status == TaskStatus.OPEN else 0), bool(answered)


def _lease_write(*, task_id: int, user, now, fresh: bool) -> None:
    """Upserts the (task, user) lease: a fresh one restarts its created_at (when the task was shown),
    a renewal only moves expires_at."""
    t = _tables()
    update = "expires_at = EXCLUDED.expires_at" + (", created_at = EXCLUDED.created_at" if fresh else "")
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {t['lease']} (task_id, user_id, expires_at, created_at) VALUES (%s, %s, %s, %s)"
            f" ON CONFLICT (task_id, user_id) DO UPDATE SET {update}",
            [task_id, user.pk, adapt(now + lease_duration()), adapt(now)],
        )


class _Missed(Exception):
    """The task row the claim locked had no free slot any more (a lease committed between the
    claim's snapshot and its lock)."""

    def __init__(self, task_id: int):
        super().__init__(task_id)
        self.task_id = task_id


def _claim(
    *, project: Project, user, mode: str, now, missed: list[int], skips: bool = True, assignments: bool = True
) -> ReviewTask | None:
    """Leases the first free task of the queue; answers it with its content. Tasks this user has
    not skipped come first, in queue order; then the ones they skipped, oldest skip first.

    Raises _Missed when the task it locked turned out to be full: the caller rolls the transaction
    back, so the row lock goes with it, and tries again without that task. The passes that wait
    for locked rows (the last ones below) can still deadlock with each other: a row a claim's walk
    locked and then found no longer free stays locked while it waits for the next one. PostgreSQL
    fails one of them (seen in CI: five claimers of twelve racing for the last slots); the caller
    makes that attempt again (_next).
    """
    quality = _quality()
    gold_first = quality.gold_serve_first(project=project, user=user, mode=mode) if quality else None
    # Gold tasks are mixed in at the project's rate; when none of the wanted kind is left, any.
    passes = [(False, gold_first, True)] if gold_first is not None else []
    passes += [(False, None, True), (True, None, True)]
    if connection.features.has_select_for_update_skip_locked:
        # SKIP LOCKED also passes over a task whose row a submit holds for a moment; before saying
        # "nothing left", wait for such rows once, so the last free slots are not missed.
        passes += [(False, None, False), (True, None, False)]
    if not skips:
        passes = [p for p in passes if not p[0]]
    with prepared.cursor() as cursor:
        for skipped, gold, skip_locked in passes:
            cursor.execute(
                *_claim_query(
                    project_id=project.pk,
                    user_id=user.pk,
                    mode=mode,
                    now=now,
                    skipped=skipped,
                    gold=gold,
                    missed=missed,
                    skip_locked=skip_locked,
                    skips=skips,
                    assignments=assignments,
                )
            )
            row = cursor.fetchone()
            if row is None:
                continue
            task = _lease_take(task_id=row[0], user=user, now=now)
            if task is None:
                raise _Missed(row[0])
            return task
    return None


def _lease_take(*, task_id: int, user, now) -> ReviewTask | None:
    """Leases the task (its row locked by the claim) to ``user`` if a slot is still free and they
    have not answered it; answers the task with its content, or None.

    The recount runs in this fresh statement, after the lock (see the module's rules). On
    PostgreSQL the conditional upsert and the content read are one statement; the content read
    sees the task as it was before the upsert, which writes only the lease.
    """
    t = _tables()
    adapt = connection.ops.adapt_datetimefield_value
    insert = (
        f"INSERT INTO {t['lease']} (task_id, user_id, expires_at, created_at) SELECT t.id, %s, %s, %s"
        f" FROM {t['task']} t WHERE t.id = %s AND t.status = '{TaskStatus.OPEN.value}'"
        " AND t.annotation_count < t.overlap -"
        f" (SELECT COUNT(*) FROM {t['lease']} l WHERE l.task_id = t.id AND l.expires_at > %s AND l.user_id <> %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {t['annotation']} a WHERE a.task_id = t.id AND a.annotator_id = %s)"
        " ON CONFLICT (task_id, user_id) DO UPDATE SET expires_at = EXCLUDED.expires_at,"
        " created_at = EXCLUDED.created_at"
    )
    params = [
        user.pk,
        adapt(now + lease_duration()),
        adapt(now),
        task_id,
        adapt(now),
        user.pk,
        user.pk,
    ]
    with prepared.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH taken AS ({insert} RETURNING task_id) {_content_select()}"
                " WHERE t.id IN (SELECT task_id FROM taken)",
                [*params, user.pk],
            )
            row = cursor.fetchone()
            return None if row is None else _content_task(row)
        cursor.execute(insert, params)
        if cursor.rowcount < 1:
            return None
    return _task_with_content(task_id=task_id, user_id=user.pk)


def review_task_next(*, project: Project, user, mode: str) -> ReviewTask | None:
    """Leases the next task of ``mode`` to ``user`` and answers it (item and candidates loaded, and
    ``user_draft``: what they typed before, or None), or None when nothing is left for them.

    A task the user already holds an unexpired lease on comes back first (with its lease renewed):
    a reload or a second tab resumes the same task instead of taking another slot.

    Locks, in one transaction: the user's Membership row (FOR UPDATE: one claim per user at a time,
    so two tabs never take two slots), then the chosen ReviewTask row (FOR UPDATE SKIP LOCKED:
    concurrent claimers pass over each other's rows instead of waiting). On SQLite the
    IMMEDIATE transaction serialises the whole claim instead.
    """
    mode = review_mode_validate(project=project, mode=mode)
    return _next(project_id=project.pk, project=project, user=user, mode=mode)


def review_task_next_by_id(*, project_id, user, mode: str) -> ReviewTask | None:
    """The API's next task for one mode, from the project id: as ``project_get`` then
    ``review_task_next`` (same answers, same errors in the same order: unknown project or not a
    member, then a mode the project does not use, then paused), with the membership check and the
    project read in the statement that locks the membership row."""
    try:
        project_id = int(project_id)
    except (TypeError, ValueError):
        raise NotFound("No such project.") from None
    if not user.is_authenticated or not rawrows.id_in_range(project_id):
        raise NotFound("No such project.")
    return _next(project_id=project_id, project=None, user=user, mode=mode)


def _next(*, project_id: int, project: Project | None, user, mode: str) -> ReviewTask | None:
    """Claim transactions until one leases a task or finds none; a task found full after its lock
    (_Missed) is left out of the next attempt, and an attempt PostgreSQL chose as a deadlock's
    victim (rolled back, nothing kept) is simply made again."""
    missed: list[int] = []
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            return _next_once(project_id=project_id, project=project, user=user, mode=mode, missed=missed)
        except _Missed as exc:
            missed.append(exc.task_id)
        except OperationalError as exc:
            if not _deadlock(exc) or attempt == CLAIM_ATTEMPTS - 1:
                raise
    return None


def _deadlock(exc: OperationalError) -> bool:
    """PostgreSQL broke a deadlock by failing this transaction (SQLSTATE 40P01)."""
    return getattr(exc.__cause__, "sqlstate", None) == "40P01"


def _next_once(
    *, project_id: int, project: Project | None, user, mode: str, missed: list[int]
) -> ReviewTask | None:
    """One claim transaction. ``project`` None: read with the membership row (and the mode checked
    against it)."""
    now = timezone.now()
    with transaction.atomic():
        # The lease this user holds, if any, in the same statement as the membership lock.
        membership = _membership_lock(
            project_id=project_id, user_id=user.pk, mode=mode, now=now, with_project=project is None
        )
        if membership is None:
            raise NotFound("No such project.")
        if project is None:
            project = membership["project"]
            mode = review_mode_validate(project=project, mode=mode)
        if membership["paused"]:
            reason = membership["paused_reason"] or "an admin paused you"
            raise Forbidden(
                f"You are paused from this project's queue ({reason}). Ask a project admin to resume you.",
                code="paused",
            )
        held = membership["held"]
        if held is not None:
            _lease_write(task_id=held, user=user, now=now, fresh=False)
            task = _task_with_content(task_id=held, user_id=user.pk)
        else:
            task = _claim(
                project=project,
                user=user,
                mode=mode,
                now=now,
                missed=missed,
                skips=membership["has_skips"],
                assignments=membership["has_assignments"],
            )
            if task is None:
                return None
            _after_commit_notify(project.pk)
    task.project = project
    task.lease_expires_at = now + lease_duration()
    return task


def _membership_lock(
    *, project_id: int, user_id: int, mode: str, now, with_project: bool = False
) -> dict | None:
    """Locks the user's Membership row (FOR UPDATE where the database has it); answers its pause
    state, ``held``: the first open task of ``mode`` this user holds an unexpired lease on, and
    whether the claim needs its skip and assignment checks at all (``has_skips``: this user
    skipped something, anywhere; ``has_assignments``: any item of the install is assigned). Most
    claims need neither, and each check left out is a subquery less to plan in every walk.
    ``with_project``: also the project (``project``, with ``current_role``)."""
    t = _tables()
    lock = " FOR UPDATE OF m" if connection.features.has_select_for_update_of else ""
    sql = (
        "SELECT m.paused, m.paused_reason, (SELECT l.task_id"
        f" FROM {t['lease']} l JOIN {t['task']} o ON o.id = l.task_id"
        " WHERE l.user_id = %s AND l.expires_at > %s AND o.project_id = %s AND o.mode = %s"
        f" AND o.status = '{TaskStatus.OPEN.value}'"
        " ORDER BY o.priority, l.task_id LIMIT 1),"
        f" EXISTS (SELECT 1 FROM {t['skip']} k WHERE k.user_id = %s),"
        f" EXISTS (SELECT 1 FROM {t['assignment']} s), m.role"
        + (f", {rawrows.columns(Project, 'p')}" if with_project else "")
        + f" FROM {t['membership']} m"
        + (
            f" JOIN {connection.ops.quote_name(Project._meta.db_table)} p ON p.id = m.project_id"
            if with_project
            else ""
        )
        + f" WHERE m.project_id = %s AND m.user_id = %s ORDER BY m.id LIMIT 1{lock}"
    )
    now = connection.ops.adapt_datetimefield_value(now)
    with prepared.cursor() as cursor:
        cursor.execute(sql, [user_id, now, project_id, mode, user_id, project_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    found = {
        "paused": bool(row[0]),
        "paused_reason": row[1],
        "held": row[2],
        "has_skips": bool(row[3]),
        "has_assignments": bool(row[4]),
        "project": None,
    }
    if with_project:
        found["project"] = rawrows.instance(Project, "p", row, 6)
        found["project"].current_role = row[5]
    return found


@cache
def _content_select_for(vendor: str) -> str:
    t = _tables()
    return (
        f"SELECT {rawrows.columns(ReviewTask, 't')}, {rawrows.columns(Item, 'i')},"
        f" {rawrows.columns(Candidate, 'ca')}, {rawrows.columns(Candidate, 'cb')},"
        f" (SELECT d.value FROM {t['draft']} d WHERE d.task_id = t.id AND d.user_id = %s LIMIT 1)"
        f" FROM {t['task']} t JOIN {t['item']} i ON i.id = t.item_id"
        f" LEFT JOIN {t['candidate']} ca ON ca.id = t.candidate_a_id"
        f" LEFT JOIN {t['candidate']} cb ON cb.id = t.candidate_b_id"
    )


def _content_select() -> str:
    """The task, its item, its candidates and the draft of the user (first parameter); the caller
    adds the WHERE clause on ``t``."""
    return _content_select_for(connection.vendor)


def _content_task(row) -> ReviewTask:
    """The task of a ``_content_select`` row, with item, candidates and ``user_draft`` set."""
    task = rawrows.instance(ReviewTask, "t", row)
    at = rawrows.width(ReviewTask)
    task.item = rawrows.instance(Item, "i", row, at)
    at += rawrows.width(Item)
    task.candidate_a = rawrows.instance(Candidate, "ca", row, at)
    at += rawrows.width(Candidate)
    task.candidate_b = rawrows.instance(Candidate, "cb", row, at)
    at += rawrows.width(Candidate)
    draft_field = AnnotationDraft._meta.get_field("value")
    col = draft_field.get_col("d")
    draft = row[at]
    for func in connection.ops.get_db_converters(col) + draft_field.get_db_converters(connection):
        draft = func(draft, col, connection)
    task.user_draft = draft
    return task


def _task_with_content(*, task_id: int, user_id: int) -> ReviewTask:
    """The task with its item and candidates loaded, and ``user_draft`` (this user's draft value or
    None), in one statement."""
    with prepared.cursor() as cursor:
        cursor.execute(f"{_content_select()} WHERE t.id = %s", [user_id, task_id])
        row = cursor.fetchone()
    if row is None:
        raise ReviewTask.DoesNotExist("ReviewTask matching query does not exist.")
    return _content_task(row)


def task_claim(*, task: ReviewTask, user) -> bool:
    """Leases this one task to ``user`` if they may work on it now (a shared /tasks/<id>/ link);
    answers whether they hold it. Locks the task row (FOR UPDATE, waits)."""
    now = timezone.now()
    with transaction.atomic():
        if not ReviewTask.objects.select_for_update().filter(pk=task.pk).exists():
            return False
        mine = TaskLease.objects.filter(task=task, user=user).values_list("expires_at", flat=True).first()
        if mine is not None and mine > now:
            _lease_write(task_id=task.pk, user=user, now=now, fresh=False)
            task.lease_expires_at = now + lease_duration()
            return True
        if task.mode not in task.project.modes:
            return False
        paused = Membership.objects.filter(project_id=task.project_id, user=user, paused=True).exists()
        assigned_elsewhere = (
            ItemAssignment.objects.filter(item_id=task.item_id).exists()
            and not ItemAssignment.objects.filter(item_id=task.item_id, user=user).exists()
        )
        free, answered = _free_slots_now(task_id=task.pk, user=user, now=now)
        if paused or assigned_elsewhere or answered or free <= 0:
            return False
        _lease_write(task_id=task.pk, user=user, now=now, fresh=True)
        task.lease_expires_at = now + lease_duration()
        _after_commit_notify(task.project_id)
    return True


# --- Submitting ------------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"field": f"value.{field}", "message": message}])


def _note(value: dict, key: str) -> str:
    note = value.get(key) or ""
    if not isinstance(note, str):
        raise _invalid(key, f"The {key} must be text.")
    if len(note) > MAX_NOTE_CHARS:
        raise _invalid(key, f"Keep the {key} under {MAX_NOTE_CHARS} characters.")
    return note.strip()


def _only_keys(value: dict, allowed: tuple[str, ...], mode: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise _invalid(
            unknown[0], f"Unknown field {unknown[0]!r} for a {mode} task; send {', '.join(allowed)}."
        )


def is_rationale_draft(candidate) -> bool:
    """A rationale recipe's candidate (label + the reasoning for it): its edit task takes the label
    and the rationale as separate fields."""
    if candidate is None:
        return False
    return candidate.recipe == "rationale" or bool((candidate.scores or {}).get("rationale"))


def _rationale_label(task: ReviewTask, value: dict) -> list[str]:
    """The label sent with an edited rationale (single label), else the draft's own."""
    project = task.project
    labels = value.get("labels")
    if labels in (None, [], ""):
        draft_label = task.candidate_a.label
        return [draft_label] if isinstance(draft_label, str) and draft_label else []
    try:
        labels = labels_validate(project=project, labels=labels)
    except ValueError as exc:
        raise _invalid("labels", str(exc)) from None
    if len(labels) != 1:
        raise _invalid("labels", f"Choose one label for the rationale: {', '.join(project.labels)}.")
    return labels


def annotation_value_validate(*, task: ReviewTask, value) -> tuple[dict, dict]:
    """Checks an answer for the task's mode. Answers (the value to store, the denormalised columns);
    raises ValidationFailed with a message that says what to fix."""
    if not isinstance(value, dict):
        raise ValidationFailed(
            'Send the answer as an object in "value", e.g. {"rating": 4}.',
            details=[{"field": "value", "message": "Expected an object."}],
        )
    project = task.project
    mode = task.mode
    if mode == ReviewMode.RATE:
        _only_keys(value, ("rating", "comment"), mode)
        rating = value.get("rating")
        if isinstance(rating, str) and rating.strip().isdigit():
            rating = int(rating)
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise _invalid("rating", "Choose a rating from 1 to 5.")
        return {"rating": rating, "comment": _note(value, "comment")}, {"rating": rating}
    if mode == ReviewMode.COMPARE:
        _only_keys(value, ("choice", "reason"), mode)
        choice = value.get("choice")
        if choice not in CompareChoice.values:
            raise _invalid("choice", "Choose a, b, tie or both_bad.")
        return {"choice": choice, "reason": _note(value, "reason")}, {"choice": choice}
    if mode == ReviewMode.EDIT:
        rationale = is_rationale_draft(task.candidate_a)
        _only_keys(value, ("text", "labels") if rationale else ("text",), mode)
        text = value.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _invalid("text", "The edited text is empty; write the answer you want to keep.")
        if len(text) > MAX_EDIT_CHARS:
            raise _invalid("text", f"Keep the edited text under {MAX_EDIT_CHARS} characters.")
        clean = {"text": text.replace("\r\n", "\n")}
        if rationale:
            clean["labels"] = _rationale_label(task, value)
        return clean, {}
    # label
    if project.task_type == TaskType.NER:
        _only_keys(value, ("spans",), mode)
        try:
            spans = spans_validate(project=project, text=task.item.display_text, spans=value.get("spans"))
        except ValueError as exc:
            raise _invalid("spans", str(exc)) from None
        return {"spans": spans}, {}
    _only_keys(value, ("labels",), mode)
    labels = value.get("labels")
    try:
        labels = labels_validate(project=project, labels=labels if labels is not None else [])
    except ValueError as exc:
        raise _invalid("labels", str(exc)) from None
    if not labels:
        raise _invalid("labels", f"Choose a label: {', '.join(project.labels)}.")
    if len(labels) > 1 and not (project.options or {}).get("multi_label"):
        raise _invalid("labels", "Choose one label; this project gives each item a single label.")
    return {"labels": labels}, {}


def client_id_parse(client_id) -> uuid.UUID:
    try:
        return client_id if isinstance(client_id, uuid.UUID) else uuid.UUID(str(client_id))
    except (TypeError, ValueError, AttributeError):
        raise ValidationFailed(
            "Send a client_id: a UUID made once per answer, so a retry is not stored twice.",
            details=[{"field": "client_id", "message": "Expected a UUID."}],
        ) from None


def duration_parse(duration_ms) -> int | None:
    if duration_ms in (None, ""):
        return None
    try:
        duration = int(duration_ms)
    except (TypeError, ValueError):
        duration = -1
    if isinstance(duration_ms, bool) or not 0 <= duration <= MAX_DURATION_MS:
        raise ValidationFailed(
            "duration_ms is the time spent in milliseconds (0 to 24 hours).",
            details=[{"field": "duration_ms", "message": "Expected a whole number of milliseconds."}],
        )
    return duration


def _replay(annotation: Annotation, *, task: ReviewTask, user) -> Annotation:
    if annotation.task_id != task.pk or annotation.annotator_id != user.pk:
        raise Conflict(
            "This client_id was already used for a different answer; make a new UUID for each answer.",
            code="client_id_reused",
        )
    return annotation


def annotation_submit(
    *, task: ReviewTask, user, value, client_id, duration_ms=None
) -> tuple[Annotation, bool]:
    """Stores one annotator's answer to a task. Answers (annotation, created): a repeat of the same
    client_id answers the stored annotation with created=False and stores nothing.

    Refuses (Conflict, nothing stored) when the user already answered the task, or when their lease
    expired and the remaining slots are taken by annotations or other annotators' leases.

    Locks: the ReviewTask row (FOR UPDATE, waits for a concurrent claim or submit on the same task).
    In the same transaction: the annotation, the human candidate of an edit, the task's
    annotation_count and status, the item's status, the lease and the draft.
    """
    client_id = client_id_parse(client_id)
    duration_ms = duration_parse(duration_ms)
    clean, columns = annotation_value_validate(task=task, value=value)
    try:
        with transaction.atomic():
            locked = _task_lock(task_id=task.pk)
            return _submit_locked(
                locked=locked,
                task=task,
                user=user,
                clean=clean,
                columns=columns,
                client_id=client_id,
                duration_ms=duration_ms,
            )
    except IntegrityError as error:
        return _submit_raced(client_id=client_id, task=task, user=user, error=error)


def annotation_submit_by_id(*, task_id, user, data) -> tuple[Annotation, bool]:
    """The API's submit, from the task id and the request body. Same answers, errors and order of
    checks as ``task_get`` then ``annotation_submit`` (unknown task, body not an object, client_id,
    duration, value), with one statement less: the membership check, the project and the task's
    row lock are one statement (``task_get(lock=True)``) inside the submit's transaction."""
    from ..review_selectors import task_get

    task = client_id = None
    try:
        with transaction.atomic():
            task = task_get(user=user, task_id=task_id, with_content=False, lock=True)
            if not isinstance(data, dict):
                raise ValidationFailed(
                    "Send a JSON object.", details=[{"field": None, "message": "Expected an object."}]
                )
            client_id = client_id_parse(data.get("client_id"))
            duration_ms = duration_parse(data.get("duration_ms"))
            clean, columns = annotation_value_validate(task=task, value=data.get("value"))
            return _submit_locked(
                locked=task,
                task=task,
                user=user,
                clean=clean,
                columns=columns,
                client_id=client_id,
                duration_ms=duration_ms,
            )
    except IntegrityError as error:
        return _submit_raced(client_id=client_id, task=task, user=user, error=error)


def _submit_raced(*, client_id, task: ReviewTask, user, error: IntegrityError) -> tuple[Annotation, bool]:
    # Two submits with one client_id raced past the check (possible only across tasks).
    existing = Annotation.objects.filter(client_id=client_id).first() if client_id else None
    if existing is None:
        raise error
    return _replay(existing, task=task, user=user), False


def _submit_locked(
    *, locked: ReviewTask, task: ReviewTask, user, clean: dict, columns: dict, client_id, duration_ms
) -> tuple[Annotation, bool]:
    """The submit once the task row is locked (``locked``; ``task`` is the caller's instance, told
    the new count and status): the checks on a fresh snapshot, then the writes."""
    now = timezone.now()
    if connection.vendor == "postgresql" and locked.mode != ReviewMode.EDIT:
        # The usual submit (a new client_id, a first answer, an unexpired lease): its checks and
        # all its writes are one statement. Anything else writes nothing there and takes the
        # path below, which says what went wrong or what to do.
        annotation = _annotation_new(
            locked=locked,
            user=user,
            clean=clean,
            columns=columns,
            client_id=client_id,
            duration_ms=duration_ms,
        )
        before = locked.annotation_count, locked.status, locked.completed_at
        _count_up(locked, now)
        if _submit_write(annotation=annotation, task=locked, now=now, guarded=True):
            return _submit_done(annotation=annotation, locked=locked, task=task)
        locked.annotation_count, locked.status, locked.completed_at = before
    same_client, answered, shown_at, lease_active = _submit_state(
        task_id=locked.pk, user_id=user.pk, client_id=client_id, now=now
    )
    if same_client is not None:
        return _replay(Annotation.objects.get(pk=same_client), task=task, user=user), False
    if answered is not None:
        raise Conflict(
            "You already answered this task; each annotator answers a task once.",
            code="already_answered",
        )
    if not lease_active:
        if locked.status != TaskStatus.OPEN or locked.annotation_count >= locked.overlap:
            raise Conflict(
                f"This task already has its {locked.overlap} annotation(s); your answer was not "
                "stored. Take the next task.",
                code="task_full",
            )
        free, _ = _free_slots_now(task_id=locked.pk, user=user, now=now)
        if free <= 0:
            raise Conflict(
                "Your hold on this task expired and other annotators now hold its remaining "
                "slot(s); your answer was not stored. Take the next task.",
                code="slot_taken",
            )
    if duration_ms is None and shown_at is not None:
        duration_ms = min(int((now - shown_at).total_seconds() * 1000), MAX_DURATION_MS)
    result_candidate = None
    if locked.mode == ReviewMode.EDIT:
        result_candidate = Candidate.objects.create(
            item_id=locked.item_id,
            text=clean["text"],
            # An edited rationale keeps the label it argues for (see is_rationale_draft).
            label=clean["labels"][0] if clean.get("labels") else None,
            source=CandidateSource.HUMAN,
            recipe="edit",
            parent_id=locked.candidate_a_id,
            created_by=user,
            provenance={"source": "human", "task": locked.pk, "annotator": user.get_username()},
        )
        clean["candidate"] = result_candidate.pk
    annotation = _annotation_new(
        locked=locked,
        user=user,
        clean=clean,
        columns=columns,
        client_id=client_id,
        duration_ms=duration_ms,
        result_candidate=result_candidate,
    )
    _count_up(locked, now)
    if connection.vendor == "postgresql":
        _submit_write(annotation=annotation, task=locked, now=now)
    else:
        annotation.save(force_insert=True)
        _task_count_save(locked)
        _lease_and_draft_clear(task_id=locked.pk, user_id=user.pk, now=now)
        if locked.status == TaskStatus.DONE:
            _item_status_update(item_id=locked.item_id)
    return _submit_done(annotation=annotation, locked=locked, task=task)


def _annotation_new(
    *, locked: ReviewTask, user, clean: dict, columns: dict, client_id, duration_ms, result_candidate=None
) -> Annotation:
    return Annotation(
        task=locked,
        annotator=user,
        mode=locked.mode,
        value=clean,
        client_id=client_id,
        duration_ms=duration_ms,
        result_candidate=result_candidate,
        **columns,
    )


def _count_up(task: ReviewTask, now) -> None:
    task.annotation_count += 1
    if task.annotation_count >= task.overlap:
        task.status, task.completed_at = TaskStatus.DONE, now


def _submit_done(*, annotation: Annotation, locked: ReviewTask, task: ReviewTask) -> tuple[Annotation, bool]:
    """After the writes: the quality hooks (webhooks, gold check) and the queue event, on commit."""
    if quality := _quality():
        quality.annotation_recorded(annotation=annotation, task_completed=locked.status == TaskStatus.DONE)
    _after_commit_notify(locked.project_id)
    task.annotation_count, task.status = locked.annotation_count, locked.status
    return annotation, True


def _task_lock(*, task_id: int) -> ReviewTask:
    """The task row, locked (FOR UPDATE, waits) where the database has row locks."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with prepared.cursor() as cursor:
        cursor.execute(
            f"SELECT {rawrows.columns(ReviewTask, 't')} FROM {_tables()['task']} t WHERE t.id = %s{lock}",
            [task_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise ReviewTask.DoesNotExist("ReviewTask matching query does not exist.")
    return rawrows.instance(ReviewTask, "t", row)


def _task_count_save(task: ReviewTask) -> None:
    """Writes the task's annotation_count, status and completed_at (what a submit changes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_tables()['task']} SET annotation_count = %s, status = %s, completed_at = %s WHERE id = %s",
            [
                task.annotation_count,
                task.status,
                connection.ops.adapt_datetimefield_value(task.completed_at),
                task.pk,
            ],
        )


def _submit_state(*, task_id: int, user_id: int, client_id: uuid.UUID, now) -> tuple:
    """In one statement: (id of the annotation with this client_id, id of this user's annotation on
    the task, when their lease on it started (None without one), whether it is unexpired)."""
    t = _tables()
    sql = (
        f"SELECT (SELECT a.id FROM {t['annotation']} a WHERE a.client_id = %s),"
        f" (SELECT a.id FROM {t['annotation']} a WHERE a.task_id = %s AND a.annotator_id = %s),"
        f" l.created_at, l.expires_at > %s FROM (SELECT 1) one"
        f" LEFT JOIN {t['lease']} l ON l.task_id = %s AND l.user_id = %s"
    )
    client_id = Annotation._meta.get_field("client_id").get_db_prep_value(client_id, connection)
    with prepared.cursor() as cursor:
        cursor.execute(
            sql,
            [client_id, task_id, user_id, connection.ops.adapt_datetimefield_value(now), task_id, user_id],
        )
        same_client, answered, shown_at, active = cursor.fetchone()
    if shown_at is not None:
        field = TaskLease._meta.get_field("created_at")
        col = field.get_col("l")
        for func in connection.ops.get_db_converters(col) + field.get_db_converters(connection):
            shown_at = func(shown_at, col, connection)
    return same_client, answered, shown_at, bool(active)


def _submit_write(*, annotation: Annotation, task: ReviewTask, now, guarded: bool = False) -> bool:
    """PostgreSQL: everything a submit writes, in one statement: the annotation (its id, created_at
    and duration_ms set on ``annotation``), the task's count and status, the used lease and this
    user's long-expired ones, the draft, and the item's status when the task is done. The
    statements of a WITH see the rows as they were before it, so the item's check for other open
    tasks leaves this task out.

    ``guarded``: only if the annotation's client_id is new, the user has not answered the task and
    holds an unexpired lease on it (checked in this statement, after the task's row lock; the
    duration, when not sent, runs from the lease's start); answers whether it wrote anything.
    """
    t = _tables()
    adapt = connection.ops.adapt_datetimefield_value
    user_id = annotation.annotator_id
    fields = [f for f in Annotation._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(annotation, True), connection) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    if guarded:
        at = [f.attname for f in fields].index("duration_ms")
        given = values[at]
        select = ["%s"] * len(fields)
        select[at] = (
            f"COALESCE(%s::integer, LEAST(FLOOR(EXTRACT(EPOCH FROM (%s - ok.created_at)) * 1000)::integer, {MAX_DURATION_MS}))"
        )
        values[at : at + 1] = [given, adapt(now)]
        client_id = Annotation._meta.get_field("client_id").get_db_prep_value(
            annotation.client_id, connection
        )
        sql = (
            f"WITH ok AS (SELECT l.created_at FROM {t['lease']} l WHERE l.task_id = %s AND l.user_id = %s"
            f" AND l.expires_at > %s AND NOT EXISTS (SELECT 1 FROM {t['annotation']} a WHERE a.client_id = %s)"
            f" AND NOT EXISTS (SELECT 1 FROM {t['annotation']} a WHERE a.task_id = %s AND a.annotator_id = %s)),"
            f" ins AS (INSERT INTO {t['annotation']} ({columns}) SELECT {', '.join(select)} FROM ok"
            " RETURNING id, duration_ms),"
        )
        params = [task.pk, user_id, adapt(now), client_id, task.pk, user_id, *values]
        gate = " AND EXISTS (SELECT 1 FROM ok)"
    else:
        sql = (
            f"WITH ins AS (INSERT INTO {t['annotation']} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
            " RETURNING id, duration_ms),"
        )
        params = list(values)
        gate = ""
    sql += (
        f" upd AS (UPDATE {t['task']} SET annotation_count = %s, status = %s, completed_at = %s WHERE id = %s{gate}),"
        f" gone AS (DELETE FROM {t['lease']} WHERE user_id = %s AND (task_id = %s OR expires_at <= %s){gate}),"
        f" draft AS (DELETE FROM {t['draft']} WHERE task_id = %s AND user_id = %s{gate})"
    )
    params += [
        task.annotation_count,
        task.status,
        adapt(task.completed_at),
        task.pk,
        user_id,
        task.pk,
        adapt(now),
        task.pk,
        user_id,
    ]
    if task.status == TaskStatus.DONE:
        sql += (
            f", item AS (UPDATE {t['item']} SET status = CASE WHEN EXISTS (SELECT 1 FROM {t['task']} o"
            f" WHERE o.item_id = %s AND o.status = '{TaskStatus.OPEN.value}' AND o.id <> %s) THEN %s ELSE %s END"
            f" WHERE id = %s{gate})"
        )
        params += [
            task.item_id,
            task.pk,
            ItemStatus.IN_REVIEW.value,
            ItemStatus.DONE.value,
            task.item_id,
        ]
    with prepared.cursor() as cursor:
        cursor.execute(f"{sql} SELECT id, duration_ms FROM ins", params)
        row = cursor.fetchone()
    if row is None:
        return False
    annotation.pk, annotation.duration_ms = row
    annotation._state.adding, annotation._state.db = False, connection.alias
    return True


def _lease_and_draft_clear(*, task_id: int, user_id: int, now) -> None:
    """The used lease and the draft go; with them this user's long-expired leases elsewhere."""
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {t['lease']} WHERE user_id = %s AND (task_id = %s OR expires_at <= %s)",
            [user_id, task_id, connection.ops.adapt_datetimefield_value(now)],
        )
        cursor.execute(f"DELETE FROM {t['draft']} WHERE task_id = %s AND user_id = %s", [task_id, user_id])


def _item_status_update(*, item_id: int) -> None:
    """Done once none of the item's tasks is open, in review otherwise (one UPDATE)."""
    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {t['item']} SET status = CASE WHEN EXISTS (SELECT 1 FROM {t['task']} o"
            " WHERE o.item_id = %s AND o.status = %s) THEN %s ELSE %s END WHERE id = %s",
            [item_id, TaskStatus.OPEN.value, ItemStatus.IN_REVIEW.value, ItemStatus.DONE.value, item_id],
        )


# --- Skips and drafts ------------------------------------------------------------------------------


def task_skip(*, task: ReviewTask, user, reason: str = "") -> None:
    """Puts the task behind the rest of this user's queue and frees their slot for others.

    Locks: none beyond the upsert of the (task, user) skip row and the delete of the lease.
    """
    reason = _note({"reason": reason}, "reason")
    now = timezone.now()
    with transaction.atomic():
        if Annotation.objects.filter(task=task, annotator=user).exists():
            raise Conflict(
                "You already answered this task; there is nothing to skip.", code="already_answered"
            )
        TaskSkip.objects.bulk_create(
            [TaskSkip(task=task, user=user, reason=reason, created_at=now)],
            update_conflicts=True,
            unique_fields=["task", "user"],
            update_fields=["reason", "created_at"],
        )
        TaskLease.objects.filter(task=task, user=user).delete()
        _after_commit_notify(task.project_id)


def draft_value_clean(value) -> dict:
    if not isinstance(value, dict):
        raise ValidationFailed("A draft is an object of form fields.", details=[{"field": "value"}])
    clean = {k: value[k] for k in DRAFT_FIELDS if k in value}
    if len(str(clean)) > MAX_DRAFT_CHARS:
        raise ValidationFailed(
            f"The draft is over {MAX_DRAFT_CHARS} characters and was not saved.",
            details=[{"field": "value", "message": "Too long."}],
        )
    return clean


def draft_save(*, task: ReviewTask, user, value: dict) -> AnnotationDraft:
    """Keeps what the user has typed so far (one draft per user and task) and renews their lease on
    the task while they are typing. Locks: none beyond the upsert of the (task, user) draft row."""
    clean = draft_value_clean(value)
    now = timezone.now()
    with transaction.atomic():
        if Annotation.objects.filter(task=task, annotator=user).exists():
            raise Conflict("You already answered this task; the draft was not kept.", code="already_answered")
        draft = AnnotationDraft(task=task, user=user, value=clean)
        AnnotationDraft.objects.bulk_create(
            [draft],
            update_conflicts=True,
            unique_fields=["task", "user"],
            update_fields=["value", "updated_at"],
        )
        TaskLease.objects.filter(task=task, user=user, expires_at__gt=now).update(
            expires_at=now + lease_duration()
        )
    return draft
