"""Reads for the quality dashboard and the stats API: progress, agreement, annotators, gold, model
rankings, distributions over time, the adjudication queue and low-agreement items.

Everything is computed from one pass over the project's annotations (`_load`), then reduced with
the pure functions of `annotation.metrics`. Who gave which answer is in here; callers decide who
may see it (reviewers and admins only: annotators never see each other's answers).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from . import metrics
from .models import (
    Adjudication,
    AdjudicationDecision,
    Annotation,
    AnnotatorPause,
    CandidateSource,
    Item,
    Membership,
    Project,
    ReviewMode,
    ReviewTask,
    TaskLease,
    TaskStatus,
    TaskType,
)
from .validation import normalise_text

BOOTSTRAP_ROUNDS = 1000
STATS_CACHE_SECONDS = 600


def dashboard_group(project_id: int) -> str:
    return f"dashboard-{project_id}"


# At most one dashboard event per project per process in this many seconds (each submit would send
# one otherwise, costing about as much as the submit's own queries); the dashboard consumer tells
# the page once more DASHBOARD_EVENT_INTERVAL and more after the last event, so held-back changes show.
DASHBOARD_EVENT_INTERVAL = 1.0
_dashboard_event_sent_at: dict[int, float] = {}


def dashboard_event_send(*, project_id: int) -> None:
    """Tells open dashboards of the project that numbers changed (they re-fetch their charts)."""
    import time

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    now = time.monotonic()
    last = _dashboard_event_sent_at.get(project_id, -DASHBOARD_EVENT_INTERVAL)
    if now - last < DASHBOARD_EVENT_INTERVAL:
        return
    _dashboard_event_sent_at[project_id] = now
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(dashboard_group(project_id), {"type": "dashboard.changed"})


# --- Loading -------------------------------------------------------------------------------------


def answer_key(*, mode: str, value: dict, task_type: str):
    """The part of an answer that agreement is measured on, as a hashable value (NER spans stay a
    list: they are compared by span F1)."""
    value = value or {}
    if mode == ReviewMode.RATE:
        return value.get("rating")
    if mode == ReviewMode.COMPARE:
        return value.get("choice")
    if mode == ReviewMode.EDIT:
        return normalise_text(value.get("text", ""))
    if task_type == TaskType.NER or "spans" in value:
        return value.get("spans") or []
    return tuple(sorted(value.get("labels") or []))


@dataclass
class TaskAnswers:
    task_id: int
    item_id: int
    mode: str
    is_gold: bool
    candidate_a_id: int | None
    candidate_b_id: int | None
    candidate_a: dict | None = None  # model, recipe, source (rate and compare tasks)
    candidate_b: dict | None = None
    answers: dict = field(default_factory=dict)  # username -> answer key
    values: dict = field(default_factory=dict)  # username -> stored value
    last_at: object = None


@dataclass
class Loaded:
    project: Project
    tasks: dict[int, TaskAnswers]
    annotations: list[dict]


_LOAD_FIELDS = (
    "id",
    "task_id",
    "task__item_id",
    "task__mode",
    "task__is_gold",
    "task__candidate_a_id",
    "task__candidate_b_id",
    "annotator_id",
    "annotator__username",
    "duration_ms",
    "created_at",
)


_CANDIDATE_FIELDS = tuple(
    f"task__candidate_{side}__{field}" for side in ("a", "b") for field in ("model", "recipe", "source")
)


def _candidate_of(row: dict, side: str) -> dict | None:
    if row.get(f"task__candidate_{side}__source") is None:
        return None
    return {field: row[f"task__candidate_{side}__{field}"] for field in ("model", "recipe", "source")}


def _load(project: Project) -> Loaded:
    """Every annotation of the project, grouped by task. Ratings and choices come from their own
    columns; the JSON value is read only for label and edit answers, where it is the answer."""
    base = Annotation.objects.filter(task__project=project).order_by()
    scalar = base.filter(task__mode__in=[ReviewMode.RATE, ReviewMode.COMPARE]).values(
        *_LOAD_FIELDS, "rating", "choice", *_CANDIDATE_FIELDS
    )
    structured = base.filter(task__mode__in=[ReviewMode.LABEL, ReviewMode.EDIT]).values(
        *_LOAD_FIELDS, "value"
    )
    annotations = sorted([*scalar, *structured], key=lambda row: row["id"])
    tasks: dict[int, TaskAnswers] = {}
    for row in annotations:
        task = tasks.get(row["task_id"])
        if task is None:
            task = tasks[row["task_id"]] = TaskAnswers(
                task_id=row["task_id"],
                item_id=row["task__item_id"],
                mode=row["task__mode"],
                is_gold=row["task__is_gold"],
                candidate_a_id=row["task__candidate_a_id"],
                candidate_b_id=row["task__candidate_b_id"],
                candidate_a=_candidate_of(row, "a"),
                candidate_b=_candidate_of(row, "b"),
            )
        who = row["annotator__username"]
        if "value" in row:
            value = row["value"] or {}
        elif task.mode == ReviewMode.RATE:
            value = {"rating": row["rating"]}
        else:
            value = {"choice": row["choice"]}
        task.answers[who] = answer_key(mode=task.mode, value=value, task_type=project.task_type)
        task.values[who] = value
        task.last_at = row["created_at"]
    return Loaded(project=project, tasks=tasks, annotations=annotations)


def _kind(mode: str, task_type: str) -> str:
    if mode == ReviewMode.RATE:
        return "ordinal"
    if mode == ReviewMode.LABEL and task_type == TaskType.NER:
        return "spans"
    return "categorical"


# --- Agreement -----------------------------------------------------------------------------------


def _agreement_for(mode: str, task_type: str, tasks: list[TaskAnswers], *, pairs: bool = True) -> dict | None:
    units = [list(t.answers.values()) for t in tasks if len(t.answers) >= 2]
    if mode == ReviewMode.RATE:
        return {"krippendorff_alpha": metrics.krippendorff_alpha_ordinal(units), "tasks": len(units)}
    if mode == ReviewMode.LABEL and task_type == TaskType.NER:
        return {"span_f1": metrics.span_f1_mean(units), "tasks": len(units)}
    if mode in (ReviewMode.COMPARE, ReviewMode.LABEL):
        out = {"fleiss_kappa": metrics.fleiss_kappa(units), "tasks": len(units)}
        if pairs:
            out["cohen_kappa"] = [
                {"annotators": list(row["annotators"]), "kappa": row["kappa"], "tasks": row["tasks"]}
                for row in metrics.cohen_kappa_pairs(
                    {t.task_id: t.answers for t in tasks if len(t.answers) >= 2}
                )
            ]
        return out
    if mode == ReviewMode.EDIT:
        # Free text has no chance model; report how often annotators wrote the same text.
        scores = [metrics.unit_agreement(u, kind="categorical") for u in units]
        return {"exact_match": (sum(scores) / len(scores)) if scores else None, "tasks": len(units)}
    return None


def agreement_value(row: dict | None) -> float | None:
    """The headline number of an agreement row, whichever statistic it carries."""
    if not row:
        return None
    for key in ("krippendorff_alpha", "fleiss_kappa", "span_f1", "exact_match"):
        if key in row:
            return row[key]
    return None


def agreement_by_mode(loaded: Loaded) -> dict:
    by_mode: dict[str, list[TaskAnswers]] = defaultdict(list)
    for task in loaded.tasks.values():
        by_mode[task.mode].append(task)
    return {
        mode: _agreement_for(mode, loaded.project.task_type, by_mode.get(mode, []))
        for mode in loaded.project.modes
    }


def task_agreement(task: TaskAnswers, task_type: str) -> float | None:
    return metrics.unit_agreement(list(task.answers.values()), kind=_kind(task.mode, task_type))


def low_agreement_tasks(
    *, project: Project, below: float, mode: str | None = None, loaded: Loaded | None = None
) -> list[dict]:
    """Tasks with at least two annotations whose agreement (0..1, see metrics.unit_agreement) is
    below `below`, lowest first."""
    loaded = loaded or _load(project)
    rows = []
    for task in loaded.tasks.values():
        if len(task.answers) < 2 or (mode and task.mode != mode):
            continue
        score = task_agreement(task, project.task_type)
        if score is not None and score < below:
            rows.append(
                {
                    "task": task.task_id,
                    "item": task.item_id,
                    "mode": task.mode,
                    "agreement": score,
                    "annotations": len(task.answers),
                }
            )
    rows.sort(key=lambda r: (r["agreement"], r["task"]))
    return rows


# --- Progress ------------------------------------------------------------------------------------


def progress_by_mode(project: Project) -> dict:
    """Per mode: open (no live lease), leased (open with a live lease), done; gold tasks apart."""
    now = timezone.now()
    leased_ids = TaskLease.objects.filter(task__project=project, expires_at__gt=now).values("task_id")
    counts = (
        ReviewTask.objects.filter(project=project)
        .values("mode")
        .annotate(
            done=Count("id", filter=Q(status=TaskStatus.DONE, is_gold=False)),
            open_leased=Count("id", filter=Q(status=TaskStatus.OPEN, is_gold=False, pk__in=leased_ids)),
            open_all=Count("id", filter=Q(status=TaskStatus.OPEN, is_gold=False)),
            gold=Count("id", filter=Q(is_gold=True)),
        )
    )
    out = {mode: {"open": 0, "leased": 0, "done": 0, "gold": 0} for mode in project.modes}
    for row in counts:
        out[row["mode"]] = {
            "open": row["open_all"] - row["open_leased"],
            "leased": row["open_leased"],
            "done": row["done"],
            "gold": row["gold"],
        }
    return out


def _per_day(queryset, field: str) -> Counter:
    rows = queryset.annotate(day=TruncDate(field)).values("day").annotate(n=Count("id")).order_by()
    return Counter({row["day"]: row["n"] for row in rows if row["day"] is not None})


def progress_over_time(project: Project, *, days: int = 30) -> list[dict]:
    """Per day (UTC) for the last `days` days with activity: tasks finished that day, annotations
    given, and tasks remaining at the day's end (created by then, not finished by then)."""
    tasks = ReviewTask.objects.filter(project=project, is_gold=False)
    created = _per_day(tasks, "created_at")
    finished = _per_day(tasks.exclude(completed_at=None), "completed_at")
    annotated = _per_day(Annotation.objects.filter(task__project=project), "created_at")
    if not created:
        return []
    today = timezone.now().date()
    first = max(min(created), today - timedelta(days=days - 1))
    remaining = sum(n for d, n in created.items() if d < first) - sum(
        n for d, n in finished.items() if d < first
    )
    rows = []
    day = first
    while day <= today:
        remaining += created.get(day, 0) - finished.get(day, 0)
        rows.append(
            {
                "date": day.isoformat(),
                "done": finished.get(day, 0),
                "annotations": annotated.get(day, 0),
                "remaining": remaining,
            }
        )
        day += timedelta(days=1)
    return rows


def agreement_over_time(loaded: Loaded, *, days: int = 30) -> list[dict]:
    """Per day (UTC) and mode: agreement on the tasks whose latest annotation came that day."""
    buckets: dict[tuple[date, str], list[TaskAnswers]] = defaultdict(list)
    today = timezone.now().date()
    for task in loaded.tasks.values():
        if len(task.answers) >= 2 and task.last_at is not None:
            day = task.last_at.date()
            if (today - day).days < days:
                buckets[(day, task.mode)].append(task)
    rows = []
    for (day, mode), tasks in sorted(buckets.items()):
        row = _agreement_for(mode, loaded.project.task_type, tasks, pairs=False)
        rows.append(
            {"date": day.isoformat(), "mode": mode, "value": agreement_value(row), "tasks": len(tasks)}
        )
    return rows


# --- Annotators ----------------------------------------------------------------------------------


def annotator_rows(loaded: Loaded) -> list[dict]:
    """Per member who annotated (or is an annotator): counts, throughput, gold accuracy, agreement
    with the majority per mode, and whether they are paused."""
    from .services.quality import gold_results

    project = loaded.project
    members = {
        m.user.get_username(): m for m in Membership.objects.filter(project=project).select_related("user")
    }
    per_user: dict[str, dict] = {}

    def row_for(username: str) -> dict:
        if username not in per_user:
            member = members.get(username)
            per_user[username] = {
                "username": username,
                "role": member.role if member else None,
                "annotations": 0,
                "by_mode": {},
                "durations": [],
                "paused": bool(member and member.paused),
                "paused_reason": member.paused_reason if member else "",
            }
        return per_user[username]

    for username, member in members.items():
        if member.role == "annotator":
            row_for(username)
    for annotation in loaded.annotations:
        row = row_for(annotation["annotator__username"])
        row["annotations"] += 1
        mode = annotation["task__mode"]
        row["by_mode"][mode] = row["by_mode"].get(mode, 0) + 1
        if annotation["duration_ms"]:
            row["durations"].append(annotation["duration_ms"])

    majority: dict[str, dict] = {}
    for mode in project.modes:
        by_task = {
            t.task_id: t.answers for t in loaded.tasks.values() if t.mode == mode and len(t.answers) >= 2
        }
        if mode == ReviewMode.LABEL and project.task_type == TaskType.NER:
            result = metrics.span_majority_agreement(by_task)
        else:
            result = metrics.majority_agreement(by_task)
        for username, numbers in result.items():
            majority.setdefault(username, {})[mode] = {"rate": numbers["rate"], "tasks": numbers["tasks"]}

    ids = {m.user_id: name for name, m in members.items()}
    gold: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for result in gold_results(project=project):
        username = ids.get(result["annotator_id"])
        if username is None:
            continue
        gold[username][0] += int(result["correct"])
        gold[username][1] += 1

    rows = []
    for username, row in sorted(per_user.items()):
        durations = row.pop("durations")
        total_ms = sum(durations)
        correct, answered = gold.get(username, (0, 0))
        agree = majority.get(username, {})
        agree_tasks = sum(v["tasks"] for v in agree.values())
        agree_sum = sum((v["rate"] or 0) * v["tasks"] for v in agree.values())
        row.update(
            {
                "tasks_per_hour": (len(durations) * 3_600_000 / total_ms) if total_ms else None,
                "median_seconds": statistics.median(durations) / 1000 if durations else None,
                "gold": {
                    "answered": answered,
                    "correct": correct,
                    "accuracy": correct / answered if answered else None,
                },
                "majority_agreement": agree_sum / agree_tasks if agree_tasks else None,
                "majority_agreement_by_mode": agree,
            }
        )
        rows.append(row)
    return rows


def open_pauses(project: Project) -> list[AnnotatorPause]:
    return list(
        AnnotatorPause.objects.filter(
            membership__project=project, resumed_at__isnull=True, membership__paused=True
        )
        .select_related("membership__user")
        .order_by("-created_at")
    )


# --- Candidates and models -----------------------------------------------------------------------


def model_name(candidate: dict | None) -> str:
    if not candidate:
        return "unknown"
    if candidate["source"] == CandidateSource.HUMAN:
        return "human"
    return candidate["model"] or candidate["recipe"] or candidate["source"]


def comparisons(loaded: Loaded) -> list[tuple[str, str, str]]:
    """Every compare answer as (model shown as A, model shown as B, "a" | "b" | "tie"); "both bad"
    counts as a tie, as in Chatbot Arena."""
    compare_tasks = [t for t in loaded.tasks.values() if t.mode == ReviewMode.COMPARE]
    out = []
    for task in compare_tasks:
        a, b = model_name(task.candidate_a), model_name(task.candidate_b)
        for choice in task.answers.values():
            out.append((a, b, choice if choice in ("a", "b") else "tie"))
    return out


def model_rankings(loaded: Loaded, *, bootstrap: int = BOOTSTRAP_ROUNDS) -> list[dict]:
    battles = comparisons(loaded)
    rates = metrics.win_rates(battles)
    baseline = (loaded.project.options or {}).get("bt_baseline")
    scores = metrics.bradley_terry(battles, baseline=baseline, bootstrap=bootstrap)
    rows = []
    for model, rate in rates.items():
        score = scores.get(model, {})
        rows.append(
            {
                "model": model,
                **rate,
                "bt_score": score.get("score"),
                "ci_low": score.get("ci_low"),
                "ci_high": score.get("ci_high"),
                "baseline": score.get("baseline", False),
            }
        )
    rows.sort(key=lambda r: (-(r["bt_score"] or 0), r["model"]))
    return rows


RATING_GROUPS = ("model", "recipe", "source")


def ratings_by_source(loaded: Loaded, *, group: str = "model") -> list[dict]:
    """How often each rating 1-5 was given, per candidate model (human edits as "human"), recipe
    or source kind."""
    rate_tasks = [t for t in loaded.tasks.values() if t.mode == ReviewMode.RATE]
    counts: dict[str, Counter] = defaultdict(Counter)
    for task in rate_tasks:
        candidate = task.candidate_a
        if group == "recipe":
            key = (candidate or {}).get("recipe") or "(none)"
        elif group == "source":
            key = (candidate or {}).get("source") or "unknown"
        else:
            key = model_name(candidate)
        for rating in task.answers.values():
            if rating:
                counts[key][int(rating)] += 1
    rows = []
    for key, counter in sorted(counts.items()):
        total = sum(counter.values())
        mean = sum(r * n for r, n in counter.items()) / total if total else None
        rows.append(
            {"source": key, **{str(r): counter.get(r, 0) for r in range(1, 6)}, "total": total, "mean": mean}
        )
    return rows


def label_distribution(loaded: Loaded) -> list[dict]:
    """How often each label was given in label tasks (NER: per span)."""
    counter: Counter = Counter()
    for task in loaded.tasks.values():
        if task.mode != ReviewMode.LABEL:
            continue
        for value in task.values.values():
            if "spans" in value:
                counter.update(s.get("label") for s in value["spans"] or [])
            else:
                counter.update(value.get("labels") or [])
    labels = list(loaded.project.labels or []) + sorted(set(counter) - set(loaded.project.labels or []))
    return [{"label": label, "count": counter.get(label, 0)} for label in labels]


# --- Everything at once --------------------------------------------------------------------------


def _signature(project: Project) -> str:
    """Changes whenever a number the heavy part of the stats rests on can change: annotations,
    task overlap and status, gold answers, members and their pauses, project options."""
    annotations = Annotation.objects.filter(task__project=project).aggregate(n=Count("id"), last=Max("id"))
    tasks = ReviewTask.objects.filter(project=project).aggregate(
        n=Count("id"),
        overlap=Sum("overlap"),
        done=Count("id", filter=Q(status=TaskStatus.DONE)),
        gold=Count("id", filter=Q(is_gold=True)),
    )
    gold_items = Item.objects.filter(project=project, is_gold=True).aggregate(
        n=Count("id"), last=Max("updated_at")
    )
    members = sorted(Membership.objects.filter(project=project).values_list("user_id", "role", "paused"))
    parts = [annotations, tasks, gold_items, members, project.updated_at, project.options]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def project_stats(*, project: Project, bootstrap: int = BOOTSTRAP_ROUNDS) -> dict:
    """The numbers behind `GET /api/v1/projects/{id}/stats/` and the dashboard.

    Progress per mode (which moves with every lease) is computed on each call; the rest is cached under a
    signature of the data it rests on, so several dashboards refreshing after the same annotation
    compute it once, and any change to the data computes it afresh.
    """
    today = timezone.now().date().isoformat()
    key = f"synthlab:stats:{project.pk}:{bootstrap}:{today}:{_signature(project)}"
    heavy = cache.get(key)
    if heavy is None:
        loaded = _load(project)
        threshold = agreement_threshold(project)
        heavy = {
            "agreement": agreement_by_mode(loaded),
            "annotators": annotator_rows(loaded),
            "models": model_rankings(loaded, bootstrap=bootstrap),
            "ratings_by_source": ratings_by_source(loaded),
            "labels": label_distribution(loaded),
            "agreement_over_time": agreement_over_time(loaded),
            "agreement_threshold": threshold,
            "low_agreement_tasks": len(low_agreement_tasks(project=project, below=threshold, loaded=loaded)),
            "progress_over_time": progress_over_time(project),
        }
        cache.set(key, heavy, STATS_CACHE_SECONDS)
    return {"progress": progress_by_mode(project), **heavy}


def agreement_threshold(project: Project) -> float:
    try:
        value = float((project.options or {}).get("agreement_threshold", 0.5))
    except (TypeError, ValueError):
        value = 0.5
    return min(max(value, 0.0), 1.0)


# --- Adjudication queue --------------------------------------------------------------------------


def _sampled(task_id: int, project_id: int, rate: float) -> bool:
    digest = hashlib.sha256(f"adjudication:{project_id}:{task_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < rate


def adjudication_queue(*, project: Project, mode: str | None = None) -> list[dict]:
    """Finished tasks a reviewer should settle, oldest first: those whose annotators disagree
    (agreement below `adjudication_threshold`, default: not unanimous), a stable sample of the rest
    (`adjudication_sample_rate`), and tasks sent back for more annotations once those are in.
    Tasks with a final ruling are not in it. Gold tasks are not in it (their answer is known)."""
    options = project.options or {}
    try:
        threshold = float(options.get("adjudication_threshold", 1.0))
    except (TypeError, ValueError):
        threshold = 1.0
    try:
        sample_rate = min(max(float(options.get("adjudication_sample_rate", 0) or 0), 0.0), 1.0)
    except (TypeError, ValueError):
        sample_rate = 0.0
    tasks = ReviewTask.objects.filter(
        project=project, status=TaskStatus.DONE, is_gold=False, annotation_count__gte=1
    )
    if mode:
        tasks = tasks.filter(mode=mode)
    tasks = tasks.exclude(adjudication__decision=AdjudicationDecision.FINAL)
    sent_back = dict(
        Adjudication.objects.filter(
            task__project=project, decision=AdjudicationDecision.SENT_BACK
        ).values_list("task_id", "annotation_count")
    )
    task_rows = list(
        tasks.values("id", "item_id", "mode", "annotation_count", "completed_at").order_by(
            "completed_at", "id"
        )
    )
    answers: dict[int, list] = defaultdict(list)
    for task_id, value in Annotation.objects.filter(task_id__in=[t["id"] for t in task_rows]).values_list(
        "task_id", "value"
    ):
        answers[task_id].append(value)
    queue = []
    for row in task_rows:
        keys = [
            answer_key(mode=row["mode"], value=v, task_type=project.task_type) for v in answers[row["id"]]
        ]
        score = (
            metrics.unit_agreement(keys, kind=_kind(row["mode"], project.task_type))
            if len(keys) >= 2
            else None
        )
        if row["id"] in sent_back:
            if row["annotation_count"] <= sent_back[row["id"]]:
                continue
            reason = "sent back; new annotations are in"
        elif score is not None and score < threshold:
            reason = "annotators disagree"
        elif sample_rate and _sampled(row["id"], project.pk, sample_rate):
            reason = "spot check"
        else:
            continue
        queue.append({**row, "agreement": score, "reason": reason})
    return queue


def task_review_detail(*, task: ReviewTask) -> dict:
    """A task with every annotation and who gave it, for reviewers and admins only."""
    annotations = list(
        Annotation.objects.filter(task=task).select_related("annotator", "result_candidate").order_by("id")
    )
    adjudication = Adjudication.objects.filter(task=task).select_related("adjudicator").first()
    return {"task": task, "annotations": annotations, "adjudication": adjudication}


def json_dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
