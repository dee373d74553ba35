"""Creating review tasks from candidates, per the project's review modes. Idempotent: a task's
`key` names the question, so running this twice for the same candidates creates nothing new."""

import itertools
import random

from django.db import transaction

from ..models import Candidate, CandidateSource, Item, Project, ReviewMode, ReviewTask, TaskType
from .quality import gold_overlap

MAX_COMPARE_PAIRS_PER_ITEM = 6


def _compare_pairs(candidates: list[Candidate]) -> list[tuple[Candidate, Candidate]]:
    pairs = list(itertools.combinations(candidates, 2))
    if len(pairs) > MAX_COMPARE_PAIRS_PER_ITEM:
        # Adjacent pairs keep every candidate in play without a quadratic number of tasks.
        pairs = list(zip(candidates, candidates[1:], strict=False))[:MAX_COMPARE_PAIRS_PER_ITEM]
    return pairs


def review_tasks_build(
    *, project: Project, item: Item, candidates: list[Candidate], rng=random
) -> list[ReviewTask]:
    """The tasks the project's modes ask for on one item (not saved)."""
    # A recipe marks candidates that must not reach reviewers with scores["skip_review"]: rejected by
    # its filters (kept for the admin with the reason) or auto-accepted above a confidence threshold.
    drafts = [
        c for c in candidates if c.source != CandidateSource.HUMAN and not (c.scores or {}).get("skip_review")
    ]
    skipped = [
        c for c in candidates if c.source != CandidateSource.HUMAN and (c.scores or {}).get("skip_review")
    ]
    texted = [c for c in drafts if c.text]
    tasks: list[ReviewTask] = []
    # A gold item's tasks take every annotator, like those made when the item was marked gold.
    overlap = gold_overlap(project) if item.is_gold else project.overlap

    def task(mode, key, a=None, b=None):
        tasks.append(
            ReviewTask(
                project=project,
                item=item,
                mode=mode,
                key=key,
                candidate_a=a,
                candidate_b=b,
                overlap=overlap,
                is_gold=item.is_gold,
            )
        )

    modes = set(project.modes)
    if ReviewMode.RATE in modes:
        for c in texted:
            task(ReviewMode.RATE, f"rate:c{c.pk}", c)
    if ReviewMode.EDIT in modes:
        for c in texted:
            task(ReviewMode.EDIT, f"edit:c{c.pk}", c)
    if ReviewMode.COMPARE in modes:
        for first, second in _compare_pairs(texted):
            a, b = (first, second) if rng.random() < 0.5 else (second, first)
            low, high = sorted((first.pk, second.pk))
            task(ReviewMode.COMPARE, f"compare:c{low}:c{high}", a, b)
    # An item whose only drafts skip review (auto-accepted) gets no label task either.
    all_skipped = bool(skipped) and not drafts
    if (
        ReviewMode.LABEL in modes
        and project.task_type in (TaskType.CLASSIFICATION, TaskType.NER)
        and not all_skipped
    ):
        suggestion = next((c for c in reversed(drafts) if c.label not in (None, [], "")), None)
        task(ReviewMode.LABEL, f"label:i{item.pk}", suggestion)
    return tasks


@transaction.atomic
def review_tasks_sync(*, project: Project, item_ids) -> int:
    """Creates the missing review tasks for these items; answers how many were created."""
    item_ids = list(item_ids)
    if not item_ids or not project.modes:
        return 0
    created = 0
    for start in range(0, len(item_ids), 1000):
        chunk = item_ids[start : start + 1000]
        items = {i.pk: i for i in Item.objects.filter(project=project, pk__in=chunk)}
        by_item: dict[int, list[Candidate]] = {pk: [] for pk in items}
        for cand in Candidate.objects.filter(item_id__in=items).order_by("id"):
            by_item[cand.item_id].append(cand)
        wanted: list[ReviewTask] = []
        for pk, item in items.items():
            wanted.extend(review_tasks_build(project=project, item=item, candidates=by_item[pk]))
        existing = dict(
            ReviewTask.objects.filter(project=project, key__in=[t.key for t in wanted]).values_list(
                "key", "candidate_a_id"
            )
        )
        fresh = [t for t in wanted if t.key not in existing]
        ReviewTask.objects.bulk_create(fresh, batch_size=1000, ignore_conflicts=True)
        created += len(fresh)
        _label_suggestions_refresh(project=project, wanted=wanted, existing=existing)
    if created:
        from ..models import ItemStatus

        Item.objects.filter(project=project, pk__in=item_ids, status=ItemStatus.NEW).update(
            status=ItemStatus.IN_REVIEW
        )
    return created


def _label_suggestions_refresh(*, project: Project, wanted: list[ReviewTask], existing: dict) -> None:
    """A label task made before the model drafted (e.g. at import) shows the newest suggestion, as
    long as nobody has answered it yet: what earlier reviewers judged never changes under them."""
    for task in wanted:
        if (
            task.mode == ReviewMode.LABEL
            and task.key in existing
            and task.candidate_a_id is not None
            and existing[task.key] != task.candidate_a_id
        ):
            ReviewTask.objects.filter(project=project, key=task.key, annotation_count=0).update(
                candidate_a_id=task.candidate_a_id
            )
