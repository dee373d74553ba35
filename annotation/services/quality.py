"""Team workflow writes: gold items and gold checks, pausing and resuming annotators, assigning
items to annotators, and adjudication.

Project options this module reads (all optional, in `Project.options`):

- `gold_rate` (0..1): the share of each annotator's tasks, per mode, that are gold tasks.
- `gold_overlap` (default 50): how many annotators a gold task may collect (every annotator should
  meet it, so gold tasks take more annotations than the project's overlap).
- `gold_rating_tolerance` (default 0): a gold rating counts as correct within this distance.
- `gold_pause_below` (0..1): pause an annotator whose gold accuracy falls below this...
- `gold_min_answers` (default 5): ...once they have answered at least this many gold tasks since
  they were last resumed.
- `adjudication_sample_rate` (0..1, default 0): share of finished tasks sent to reviewers even when
  the annotators agree (a stable sample: a task is in or out for good).
- `adjudication_threshold` (0..1, default 1): tasks whose agreement is below it go to reviewers;
  the default sends every task that is not unanimous.

Gold answers live on the item, `Item.reference`, in the shape imports give it:
labels (a string, a list of strings or {"labels": [...]}), spans (a list of {start, end, label} or
{"spans": [...]}), and for the candidate modes a dict with `"rating"` (any candidate of the item),
`"ratings"` ({candidate id: rating}) or `"preferred"` (a candidate id, or "tie").
"""

from __future__ import annotations

import hashlib
import logging
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from synthlab.errors import Conflict, ValidationFailed

from ..models import (
    Adjudication,
    AdjudicationDecision,
    Annotation,
    AnnotatorPause,
    Candidate,
    Item,
    ItemAssignment,
    ItemStatus,
    Membership,
    Project,
    ReviewMode,
    ReviewTask,
    Role,
    TaskStatus,
    TaskType,
    WebhookEvent,
)
from ..validation import labels_validate, spans_validate
from . import webhooks

logger = logging.getLogger(__name__)

DEFAULT_GOLD_OVERLAP = 50
DEFAULT_GOLD_MIN_ANSWERS = 5
MAX_SEND_BACK = 10


def _option(project: Project, key: str, default=None):
    return (project.options or {}).get(key, default)


def _fraction(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0.0 <= number <= 1.0 else None


# --- Gold: expected answers and scoring ----------------------------------------------------------


def gold_overlap(project: Project) -> int:
    try:
        wanted = int(_option(project, "gold_overlap", DEFAULT_GOLD_OVERLAP))
    except (TypeError, ValueError):
        wanted = DEFAULT_GOLD_OVERLAP
    return max(project.overlap, min(wanted, 1000))


def gold_expected(*, task: ReviewTask, reference) -> dict | None:
    """The answer a gold task expects, shaped like an annotation value of its mode; None when the
    item's reference says nothing about this task (it is then not scored)."""
    if reference is None:
        return None
    mode = task.mode
    if mode == ReviewMode.LABEL:
        if isinstance(reference, dict):
            if "spans" in reference:
                return {"spans": reference["spans"]}
            if "labels" in reference:
                labels = reference["labels"]
                return {"labels": [labels] if isinstance(labels, str) else list(labels)}
            return None
        if isinstance(reference, str):
            return {"labels": [reference]}
        if isinstance(reference, list):
            if all(isinstance(x, dict) for x in reference) and reference:
                return {"spans": reference}
            if all(isinstance(x, str) for x in reference):
                return {"labels": list(reference)}
        return None
    if not isinstance(reference, dict):
        return None
    if mode == ReviewMode.RATE:
        ratings = reference.get("ratings") or {}
        rating = ratings.get(str(task.candidate_a_id), reference.get("rating"))
        return {"rating": int(rating)} if rating is not None else None
    if mode == ReviewMode.COMPARE and "preferred" in reference:
        preferred = reference["preferred"]
        if preferred == "tie":
            return {"choice": "tie"}
        if str(preferred) == str(task.candidate_a_id):
            return {"choice": "a"}
        if str(preferred) == str(task.candidate_b_id):
            return {"choice": "b"}
    return None


def _span_set(spans) -> set:
    return {(int(s["start"]), int(s["end"]), str(s["label"])) for s in spans or []}


def gold_answer_correct(*, expected: dict, value: dict, tolerance: int = 0) -> bool:
    """Whether an annotation value matches a gold task's expected answer."""
    if "rating" in expected:
        return value.get("rating") is not None and abs(int(value["rating"]) - expected["rating"]) <= tolerance
    if "choice" in expected:
        return value.get("choice") == expected["choice"]
    if "labels" in expected:
        return sorted(value.get("labels") or []) == sorted(expected["labels"])
    if "spans" in expected:
        return _span_set(value.get("spans")) == _span_set(expected["spans"])
    return False


def gold_reference_validate(*, project: Project, item: Item, reference):
    """Checks a gold answer for an item against the project (labels from its label set, spans
    inside the text). Answers the cleaned reference; ValidationFailed says what to fix."""

    def invalid(message: str):
        raise ValidationFailed(message, details=[{"field": "reference", "message": message}])

    if reference in (None, "", [], {}):
        invalid("Give the expected answer: labels, spans, a rating or a preferred candidate.")
    candidate_ids = set(item.candidates.values_list("pk", flat=True))
    if isinstance(reference, dict):
        clean = {}
        for key, value in reference.items():
            if key == "labels":
                try:
                    clean["labels"] = labels_validate(project=project, labels=value)
                except ValueError as exc:
                    invalid(str(exc))
            elif key == "spans":
                try:
                    clean["spans"] = spans_validate(project=project, text=item.display_text, spans=value)
                except ValueError as exc:
                    invalid(str(exc))
            elif key == "rating":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                    invalid("A gold rating is a whole number from 1 to 5.")
                clean["rating"] = value
            elif key == "ratings":
                if not isinstance(value, dict):
                    invalid('"ratings" maps candidate ids to ratings 1-5.')
                for cid, rating in value.items():
                    if str(cid) not in {str(c) for c in candidate_ids}:
                        invalid(f"Candidate {cid} is not a candidate of this item.")
                    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
                        invalid(f"The gold rating for candidate {cid} must be a whole number from 1 to 5.")
                clean["ratings"] = {str(k): v for k, v in value.items()}
            elif key == "preferred":
                if value != "tie" and str(value) not in {str(c) for c in candidate_ids}:
                    invalid(f'"preferred" is a candidate id of this item or "tie", not {value!r}.')
                clean["preferred"] = value
            else:
                clean[key] = value  # other keys (e.g. a QA answer) are kept as they came
        return clean
    if project.task_type == TaskType.NER:
        try:
            return spans_validate(project=project, text=item.display_text, spans=reference)
        except ValueError as exc:
            invalid(str(exc))
    try:
        labels = labels_validate(project=project, labels=reference)
    except ValueError as exc:
        invalid(str(exc))
    return labels[0] if isinstance(reference, str) else labels


@transaction.atomic
def items_gold_set(*, project: Project, items, reference=None, is_gold: bool = True) -> int:
    """Marks items as gold (or not). With `reference`, every item gets that expected answer;
    without, each keeps the reference it has (imported gold). Their review tasks become gold tasks
    that every annotator may answer (overlap raised to `gold_overlap`); unmarking lowers the
    overlap back, never below the annotations a task already has. Answers how many items changed.

    Locks: the items' review task rows (FOR UPDATE) while their overlap changes.
    """
    items = list(items)
    if not items:
        return 0
    if is_gold:
        for item in items:
            new_reference = reference if reference is not None else item.reference
            if new_reference is None:
                raise ValidationFailed(
                    f"Item {item} has no expected answer; give one to make it gold.",
                    details=[{"field": "reference", "message": "Required for gold items."}],
                )
            item.reference = gold_reference_validate(project=project, item=item, reference=new_reference)
            item.is_gold = True
    else:
        for item in items:
            item.is_gold = False
    now = timezone.now()
    for item in items:
        item.updated_at = now  # bulk_update does not apply auto_now
    Item.objects.bulk_update(items, ["is_gold", "reference", "updated_at"])
    tasks = list(ReviewTask.objects.select_for_update().filter(item__in=items))
    target = gold_overlap(project) if is_gold else project.overlap
    for task in tasks:
        task.is_gold = is_gold
        task.overlap = max(target, task.annotation_count, 1)
        if task.annotation_count < task.overlap:
            task.status, task.completed_at = TaskStatus.OPEN, None
        elif task.status != TaskStatus.DONE:
            task.status, task.completed_at = TaskStatus.DONE, timezone.now()
    ReviewTask.objects.bulk_update(tasks, ["is_gold", "overlap", "status", "completed_at"])
    for item in items:
        still_open = any(t.item_id == item.pk and t.status == TaskStatus.OPEN for t in tasks)
        if tasks and any(t.item_id == item.pk for t in tasks):
            Item.objects.filter(pk=item.pk).update(
                status=ItemStatus.IN_REVIEW if still_open else ItemStatus.DONE
            )
    return len(items)


def gold_serve_first(*, project: Project, user, mode: str) -> bool | None:
    """For the review queue: should this user's next task of `mode` be a gold task (True), a regular
    one (False), or no preference (None: the project mixes in no gold)?

    Keeps the share of gold among the user's answers close to `gold_rate` without a fixed cadence:
    gold is due when the gold answered so far trails rate * (answers + 1) plus a jitter in
    (-0.5, 0.5) that is a hash of (project, user, answers) - stable on reload, unpredictable to
    the annotator. The count stays within about one task of the rate at every point.
    """
    rate = _fraction(_option(project, "gold_rate"))
    if not rate:
        return None
    answered = Annotation.objects.filter(task__project=project, task__mode=mode, annotator=user)
    total = answered.count()
    gold = answered.filter(task__is_gold=True).count()
    digest = hashlib.sha256(f"{project.pk}:{user.pk}:{mode}:{total}".encode()).digest()
    jitter = int.from_bytes(digest[:4], "big") / 2**32 - 0.5
    return gold < rate * (total + 1) + jitter


# --- Gold accuracy, pause and resume -------------------------------------------------------------


def gold_results(*, project: Project, user=None, since=None) -> list[dict]:
    """Every scored answer to a gold task: {"annotator_id", "task_id", "correct", "created_at"}."""
    tolerance = int(_option(project, "gold_rating_tolerance", 0) or 0)
    annotations = Annotation.objects.filter(task__project=project, task__is_gold=True).select_related(
        "task", "task__item"
    )
    if user is not None:
        annotations = annotations.filter(annotator=user)
    if since is not None:
        annotations = annotations.filter(created_at__gt=since)
    rows = []
    for annotation in annotations.order_by("id"):
        expected = gold_expected(task=annotation.task, reference=annotation.task.item.reference)
        if expected is None:
            continue
        rows.append(
            {
                "annotator_id": annotation.annotator_id,
                "task_id": annotation.task_id,
                "correct": gold_answer_correct(
                    expected=expected, value=annotation.value, tolerance=tolerance
                ),
                "created_at": annotation.created_at,
            }
        )
    return rows


def _notify_dashboard(project_id: int) -> None:
    from .. import stats

    transaction.on_commit(partial(stats.dashboard_event_send, project_id=project_id))


def gold_check(*, annotation: Annotation) -> AnnotatorPause | None:
    """After a gold answer: pauses the annotator when their gold accuracy since they were last
    resumed is below the project's `gold_pause_below` (with at least `gold_min_answers` answers).
    Answers the pause, or None. Call inside the submit transaction.

    Locks: the annotator's Membership row (FOR UPDATE).
    """
    task = annotation.task
    if not task.is_gold:
        return None
    project = task.project
    threshold = _fraction(_option(project, "gold_pause_below"))
    if threshold is None:
        return None
    membership = (
        Membership.objects.select_for_update().filter(project=project, user=annotation.annotator).first()
    )
    if membership is None or membership.paused or membership.role != Role.ANNOTATOR:
        return None
    last_resume = (
        membership.pauses.filter(resumed_at__isnull=False)
        .order_by("-resumed_at")
        .values_list("resumed_at", flat=True)
    ).first()
    results = gold_results(project=project, user=annotation.annotator, since=last_resume)
    answered = len(results)
    correct = sum(r["correct"] for r in results)
    try:
        minimum = max(1, int(_option(project, "gold_min_answers", DEFAULT_GOLD_MIN_ANSWERS)))
    except (TypeError, ValueError):
        minimum = DEFAULT_GOLD_MIN_ANSWERS
    if answered < minimum or correct / answered >= threshold:
        return None
    reason = (
        f"Your answers matched the expected answer on {correct} of {answered} check tasks "
        f"({correct / answered:.0%}); this project asks for at least {threshold:.0%}. "
        "A project admin has been told and can resume you after reviewing the guidelines with you."
    )
    membership.paused, membership.paused_reason = True, reason
    membership.save(update_fields=["paused", "paused_reason"])
    pause = AnnotatorPause.objects.create(
        membership=membership, reason=reason, gold_correct=correct, gold_answered=answered
    )
    webhooks.webhook_event_emit(
        project=project,
        event=WebhookEvent.ANNOTATOR_PAUSED,
        data={
            "annotator": annotation.annotator.get_username(),
            "gold_correct": correct,
            "gold_answered": answered,
            "threshold": threshold,
        },
    )
    _notify_dashboard(project.pk)
    return pause


@transaction.atomic
def membership_pause(*, membership: Membership, reason: str, user=None) -> Membership:
    """An admin pauses an annotator by hand."""
    reason = (reason or "").strip() or "An admin paused you from this project's queue."
    membership.paused, membership.paused_reason = True, reason
    membership.save(update_fields=["paused", "paused_reason"])
    AnnotatorPause.objects.create(membership=membership, reason=reason)
    _notify_dashboard(membership.project_id)
    return membership


@transaction.atomic
def membership_resume(*, membership: Membership, user) -> Membership:
    """Puts a paused annotator back in the queue; their gold accuracy for the next pause decision
    counts only answers given from now on."""
    if not membership.paused:
        raise Conflict(f"{membership.user.get_username()} is not paused.")
    membership.paused, membership.paused_reason = False, ""
    membership.save(update_fields=["paused", "paused_reason"])
    now = timezone.now()
    updated = membership.pauses.filter(resumed_at__isnull=True).update(resumed_at=now, resumed_by=user)
    if not updated:  # paused without a record (e.g. through the admin site)
        AnnotatorPause.objects.create(
            membership=membership,
            reason="Paused outside SynthLab's pause flow.",
            resumed_at=now,
            resumed_by=user,
        )
    _notify_dashboard(membership.project_id)
    return membership


# --- After each annotation -----------------------------------------------------------------------


def annotation_recorded(*, annotation: Annotation, task_completed: bool) -> None:
    """What the quality features do after an annotation is stored; the review service calls this
    inside its submit transaction. Emits the `annotation.created` (and `task.completed`) webhooks,
    runs the gold check, and tells the dashboard, all taking effect on commit."""
    task = annotation.task
    webhooks.webhook_event_emit(
        project=task.project_id,
        event=WebhookEvent.ANNOTATION_CREATED,
        data={
            "annotation": annotation.pk,
            "task": task.pk,
            "item": task.item_id,
            "mode": annotation.mode,
            "annotator": annotation.annotator.get_username(),
            "value": annotation.value,
        },
    )
    if task_completed:
        webhooks.webhook_event_emit(
            project=task.project_id,
            event=WebhookEvent.TASK_COMPLETED,
            data={
                "task": task.pk,
                "item": task.item_id,
                "mode": task.mode,
                "annotations": task.annotation_count,
            },
        )
    gold_check(annotation=annotation)
    _notify_dashboard(task.project_id)


# --- Assignment ----------------------------------------------------------------------------------


def _annotators(project: Project, usernames) -> list:
    usernames = list(dict.fromkeys(u for u in usernames or [] if u))
    if not usernames:
        raise ValidationFailed(
            "Choose at least one annotator.", details=[{"field": "annotators", "message": "Required."}]
        )
    members = {
        m.user.get_username(): m.user
        for m in Membership.objects.filter(project=project, user__username__in=usernames).select_related(
            "user"
        )
    }
    missing = [u for u in usernames if u not in members]
    if missing:
        raise ValidationFailed(
            f'"{missing[0]}" is not a member of this project; add them under Members first.',
            details=[{"field": "annotators", "message": f"Not a member: {', '.join(missing)}."}],
        )
    return [members[u] for u in usernames]


@transaction.atomic
def items_assign(*, project: Project, items, usernames, user=None, replace: bool = False) -> int:
    """Assigns items to annotators: those items are then served only to them (and to no one else).
    `replace` drops the items' other assignments first. Answers the number of new assignments."""
    users = _annotators(project, usernames)
    item_ids = (
        list(items.values_list("pk", flat=True)) if hasattr(items, "values_list") else [i.pk for i in items]
    )
    if not item_ids:
        raise ValidationFailed(
            "No items match; choose items or widen the filter.",
            details=[{"field": "items", "message": "Empty."}],
        )
    if replace:
        ItemAssignment.objects.filter(item_id__in=item_ids).exclude(user__in=users).delete()
    rows = [ItemAssignment(item_id=i, user=u, assigned_by=user) for i in item_ids for u in users]
    before = ItemAssignment.objects.filter(item_id__in=item_ids).count()
    ItemAssignment.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return ItemAssignment.objects.filter(item_id__in=item_ids).count() - before


@transaction.atomic
def items_unassign(*, project: Project, items, usernames=None) -> int:
    """Removes assignments (of the named annotators, or all): unassigned items go to everyone."""
    item_ids = (
        list(items.values_list("pk", flat=True)) if hasattr(items, "values_list") else [i.pk for i in items]
    )
    assignments = ItemAssignment.objects.filter(item_id__in=item_ids, item__project=project)
    if usernames:
        assignments = assignments.filter(user__username__in=list(usernames))
    deleted, _ = assignments.delete()
    return deleted


# --- Adjudication --------------------------------------------------------------------------------


def adjudication_value_validate(*, task: ReviewTask, value) -> dict:
    """Checks a final answer like an annotation of the task's mode. For an edit task, picking an
    annotator's edit keeps the human candidate it became ("candidate"), which exports then use."""
    from .review import annotation_value_validate

    candidate = None
    if task.mode == ReviewMode.EDIT and isinstance(value, dict) and "candidate" in value:
        value = dict(value)
        candidate = value.pop("candidate")
    clean, _ = annotation_value_validate(task=task, value=value)
    if candidate is not None:
        kept = (
            Candidate.objects.filter(pk=candidate, item_id=task.item_id)
            .values_list("text", flat=True)
            .first()
        )
        if kept is not None and kept == clean["text"]:
            clean["candidate"] = candidate
    return clean


@transaction.atomic
def adjudication_finalize(*, task: ReviewTask, user, value, note: str = "") -> Adjudication:
    """A reviewer sets the task's final answer (exports prefer it over the annotators' majority).
    A later ruling replaces an earlier one. Locks: the task row (FOR UPDATE)."""
    clean = adjudication_value_validate(task=task, value=value)
    locked = ReviewTask.objects.select_for_update().get(pk=task.pk)
    adjudication, _ = Adjudication.objects.update_or_create(
        task=locked,
        defaults={
            "decision": AdjudicationDecision.FINAL,
            "value": clean,
            "note": (note or "").strip()[:5000],
            "adjudicator": user,
            "annotation_count": locked.annotation_count,
        },
    )
    _notify_dashboard(locked.project_id)
    return adjudication


@transaction.atomic
def adjudication_send_back(*, task: ReviewTask, user, extra: int = 1, note: str = "") -> Adjudication:
    """A reviewer asks for `extra` more annotations: the task reopens with a larger overlap and
    comes back to the adjudication queue once they are in. Locks: the task row (FOR UPDATE)."""
    try:
        extra = int(extra)
    except (TypeError, ValueError):
        extra = 0
    if not 1 <= extra <= MAX_SEND_BACK:
        raise ValidationFailed(
            f"Ask for 1 to {MAX_SEND_BACK} more annotations.",
            details=[{"field": "extra", "message": "1-10."}],
        )
    locked = ReviewTask.objects.select_for_update().get(pk=task.pk)
    ReviewTask.objects.filter(pk=locked.pk).update(
        overlap=F("overlap") + extra, status=TaskStatus.OPEN, completed_at=None
    )
    Item.objects.filter(pk=locked.item_id).update(status=ItemStatus.IN_REVIEW)
    adjudication, _ = Adjudication.objects.update_or_create(
        task=locked,
        defaults={
            "decision": AdjudicationDecision.SENT_BACK,
            "value": None,
            "note": (note or "").strip()[:5000],
            "adjudicator": user,
            "annotation_count": locked.annotation_count,
        },
    )
    transaction.on_commit(partial(_queue_changed, project_id=locked.project_id))
    return adjudication


def _queue_changed(project_id: int) -> None:
    try:
        from .review import queue_event_send
    except ImportError:  # pragma: no cover - the review queue is part of the app
        return
    queue_event_send(project_id=project_id)


def adjudicated_answers(*, task_ids) -> dict[int, dict]:
    """For exports: the final answers reviewers set, by task id, with their provenance
    ({"value", "adjudicator", "adjudicated_at", "note"}). Exports prefer these over the majority
    and say so in the row's provenance."""
    rows = Adjudication.objects.filter(task_id__in=list(task_ids), decision=AdjudicationDecision.FINAL)
    return {
        a.task_id: {
            "value": a.value,
            "adjudicator": a.adjudicator.get_username(),
            "adjudicated_at": a.updated_at.isoformat(),
            "note": a.note,
        }
        for a in rows.select_related("adjudicator")
    }
