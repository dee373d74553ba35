"""Reads behind the methods panel on the project page: the backtranslation curator's precision and
recall against the admin's hand-labelled dev set, self-consistency calibration on reviewed
auto-accept-grade items, and judge-human agreement beside human-human agreement."""

from __future__ import annotations

from itertools import combinations

from annotation.metrics import cohen_kappa
from annotation.models import Annotation, Candidate, ReviewMode, ReviewTask
from synthlab.errors import NotFound, ValidationFailed

from .methods import backtranslation as bt
from .methods import judge as jd
from .methods import self_consistency as sc

DEV_KEY = "curation_dev_labels"


def curation_dev_label_set(*, project, candidate_id, good) -> dict:
    """The admin's hand label (good pair or not) for one backtranslation candidate; None clears it."""
    if not Candidate.objects.filter(
        pk=candidate_id, item__project=project, recipe="backtranslation"
    ).exists():
        raise NotFound("No such backtranslation pair in this project.")
    if good not in (True, False, None):
        raise ValidationFailed('Label the pair with "good": true or false (null clears it).')
    options = dict(project.options or {})
    labels = dict(options.get(DEV_KEY) or {})
    if good is None:
        labels.pop(str(candidate_id), None)
    else:
        labels[str(candidate_id)] = bool(good)
    options[DEV_KEY] = labels
    project.options = options
    project.save(update_fields=["options", "updated_at"])
    return labels


def curation_quality(project) -> dict:
    labels = (project.options or {}).get(DEV_KEY) or {}
    rows = []
    for cand in Candidate.objects.filter(pk__in=[int(k) for k in labels], item__project=project):
        rows.append((bool(cand.scores.get("kept")), bool(labels[str(cand.pk)])))
    pairs = Candidate.objects.filter(item__project=project, recipe="backtranslation").count()
    return {**bt.precision_recall(rows), "pairs": pairs}


def _human_label(task_annotations) -> list:
    out = []
    for a in task_annotations:
        labels = (a.value or {}).get("labels")
        if isinstance(labels, list) and len(labels) == 1:
            out.append(labels[0])
    return out


def calibration(project) -> dict:
    """Auto-accept-grade items (agreement >= threshold) that reviewers still labelled: how often the
    vote matched them (every human label counts)."""
    cands = Candidate.objects.filter(
        item__project=project, recipe="self_consistency", scores__route="auto_accept"
    )
    by_item = {c.item_id: c for c in cands}
    rows = []
    auto = sum(1 for c in cands if c.scores.get("auto_accepted"))
    tasks = ReviewTask.objects.filter(item_id__in=by_item, mode=ReviewMode.LABEL).prefetch_related(
        "annotations"
    )
    for task in tasks:
        for human in _human_label(task.annotations.all()):
            rows.append((by_item[task.item_id].label, human))
    return {**sc.calibration(rows), "auto_accepted": auto, "candidates": cands.count()}


def _human_pairs(by_task: dict) -> list[tuple]:
    return [(v[a], v[b]) for v in by_task.values() for a, b in combinations(sorted(v), 2)]


def _kappa_block(pairs: list[tuple]) -> dict:
    n = len(pairs)
    return {
        "n": n,
        "agreement": sum(1 for x, y in pairs if x == y) / n if n else None,
        "kappa": cohen_kappa([x for x, _ in pairs], [y for _, y in pairs]) if n else None,
    }


def judge_agreement(project) -> dict:
    """Judge vs humans and humans vs humans, on ratings and on compare choices. The judge's verdicts
    live on the candidates (never Annotation rows), so the human figures cannot include them."""
    out = {}
    # ratings
    judged = {
        f"rate:c{c.pk}": c.scores["judge"]["rating"]
        for c in Candidate.objects.filter(item__project=project, scores__has_key="judge")
    }
    human_by_task: dict[str, dict] = {}
    for a in Annotation.objects.filter(task__project=project, mode=ReviewMode.RATE).select_related("task"):
        human_by_task.setdefault(a.task.key, {})[a.annotator_id] = a.rating
    judge_pairs = [
        (judged[key], r) for key, answers in human_by_task.items() if key in judged for r in answers.values()
    ]
    out["rate"] = {
        "judge_human": jd.agreement(judge_pairs),
        "human_human": _kappa_block(_human_pairs(human_by_task)),
        "judged": len(judged),
    }
    # compare choices
    verdicts = {}
    for c in Candidate.objects.filter(item__project=project, scores__has_key="judge_compare"):
        for key, v in c.scores["judge_compare"].items():
            verdicts[key] = v
    human_choice: dict[str, dict] = {}
    for a in Annotation.objects.filter(task__project=project, mode=ReviewMode.COMPARE).select_related("task"):
        human_choice.setdefault(a.task.key, {})[a.annotator_id] = (
            "tie" if a.choice == "both_bad" else a.choice
        )
    judge_pairs = [
        (verdicts[key]["choice"], ch)
        for key, answers in human_choice.items()
        if key in verdicts
        for ch in answers.values()
    ]
    swaps = [(v["first"], v["swapped"]) for v in verdicts.values() if v.get("swapped")]
    out["compare"] = {
        "judge_human": jd.agreement(judge_pairs),
        "human_human": _kappa_block(_human_pairs(human_choice)),
        "judged": len(verdicts),
        "swap_consistency": jd.swap_consistency(swaps),
    }
    return out


def methods_panel(project) -> dict:
    recipes = set(Candidate.objects.filter(item__project=project).values_list("recipe", flat=True).distinct())
    panel = {}
    if "backtranslation" in recipes:
        panel["curation"] = curation_quality(project)
    if "self_consistency" in recipes:
        panel["calibration"] = calibration(project)
    if (
        Candidate.objects.filter(item__project=project, scores__has_key="judge").exists()
        or Candidate.objects.filter(item__project=project, scores__has_key="judge_compare").exists()
    ):
        panel["judge"] = judge_agreement(project)
    return panel
