"""Small named rules that turn review outcomes into training rows.

Each rule is one function over plain records (no database), so each is tested on its own; rows.py
streams the records from the database and applies the rules a format asks for. A rule answers what it made,
or the reason it made nothing (the reasons become the `dropped` counts of an export).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from statistics import fmean

from .. import metrics
from ..validation import normalise_text

# Rule names: each row says which one made it (the `rule` column).
COMPARE_MAJORITY = "compare_majority"
RATING_BEST_WORST = "rating_best_worst"
RATING_BEST_RANDOM = "rating_best_random"
EDIT_VS_DRAFT = "edit_vs_draft"
HUMAN_EDIT = "human_edit"
ACCEPTED_DRAFT = "accepted_draft"
BEST_RATED = "best_rated"
RATING_DESIRABLE = "rating_desirable"
RATING_UNDESIRABLE = "rating_undesirable"
ACCEPTED_EDIT = "accepted_edit"
BOTH_BAD = "both_bad"
LABEL_MAJORITY = "label_majority"
SPAN_MAJORITY = "span_majority"
IMPORTED_REFERENCE = "imported_reference"
# Method recipes (generation/recipes): a critique_revise revision reviewers preferred to its original,
# and a candidate the recipe accepted itself above its confidence threshold (scores["auto_accepted"]).
CRITIQUE_REVISE = "critique_revise"
AUTO_ACCEPTED = "auto_accepted"


@dataclass(slots=True)
class Cand:
    id: int | None
    text: str
    label: object = None
    source: str = "model"
    model: str = ""
    recipe: str = ""
    parent_id: int | None = None
    norm: str | None = None  # normalised text, computed on first use by same_text
    scores: dict | None = None  # the recipe's scores (auto_accepted, critique_revise, rationale, ...)
    original_id: int | None = None  # a critique_revise revision: the candidate it revised (provenance)


def auto_accepted(cand: Cand) -> bool:
    """Accepted by its recipe without review (e.g. self-consistency agreement over the threshold)."""
    return bool((cand.scores or {}).get("auto_accepted"))


def recipe_rejected(cand: Cand) -> bool:
    """Kept from reviewers by its recipe's filters (scores["skip_review"]) and not auto-accepted:
    exports leave it out."""
    scores = cand.scores or {}
    return bool(scores.get("skip_review")) and not scores.get("auto_accepted")


def revision_of(revision: Cand, original: Cand) -> bool:
    """Whether `revision` is the critique_revise revision of `original`: the candidate its provenance
    names, or the recipe's own first draft (sample 0) when it wrote one."""
    if (revision.scores or {}).get("critique_revise") != "revision":
        return False
    if revision.original_id is not None:
        return revision.original_id == original.id
    return original.recipe == CRITIQUE_REVISE and (original.scores or {}).get("critique_revise") == "original"


# The ASCII characters str.split() splits on (str.isspace), and a table that lowers ASCII letters.
_ASCII_SPACES = bytes(c for c in range(128) if chr(c).isspace())
_ASCII_LOWER = bytes(range(256)).lower()


def same_text(first: Cand, second: Cand) -> bool:
    """Whether two candidates say the same once case, Unicode forms and spacing are normalised."""
    if first.text == second.text:
        return True
    if first.text.isascii() and second.text.isascii():
        # ASCII: NFKC changes nothing and casefold is lower(), so only case and spacing can differ.
        # Texts whose non-space characters differ differ (the usual answer, found without
        # splitting them into words).
        # One pass each: lowered, spaces left out.
        if first.text.encode().translate(_ASCII_LOWER, _ASCII_SPACES) != second.text.encode().translate(
            _ASCII_LOWER, _ASCII_SPACES
        ):
            return False
        return " ".join(first.text.split()).lower() == " ".join(second.text.split()).lower()
    if first.norm is None:
        first.norm = normalise_text(first.text)
    if second.norm is None:
        second.norm = normalise_text(second.text)
    return first.norm == second.norm


@dataclass(slots=True)
class Judgment:
    """One edit or label annotation, reduced to what the rules read."""

    value: dict | None = None
    result_candidate_id: int | None = None


@dataclass(slots=True)
class Task:
    """One review task and its answers: compare votes counted per choice, the ratings given, and
    for edit/label tasks each annotation's value (in submission order)."""

    id: int
    mode: str
    a_id: int | None = None
    b_id: int | None = None
    votes: dict[str, int] = field(default_factory=dict)
    ratings: list[int] = field(default_factory=list)
    judgments: list[Judgment] = field(default_factory=list)
    # A reviewer's final ruling (Adjudication.value, shaped like an annotation value of the mode):
    # it overrides the annotators' majority.
    adjudicated: dict | None = None
    # compare_majority's last answer and the margin it was asked with (pairs and agreement both
    # ask for it).
    majority: tuple | None = None


@dataclass(slots=True)
class ItemRecord:
    id: int
    external_id: str = ""
    text: str = ""
    prompt: str = ""
    messages: list | None = None
    split: str = "train"
    reference: object = None
    content_hash: str = ""
    candidates: dict[int, Cand] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    annotators: int = 0  # distinct annotators who answered the item's tasks
    rejected: int = 0  # candidates left out: rejected by their recipe's filters (recipe_rejected)


@dataclass(slots=True)
class Pair:
    rule: str
    chosen: Cand
    rejected: Cand
    detail: dict


@dataclass(slots=True)
class Pick:
    """One completion of an item (SFT, eval) or one unpaired example (KTO: `label`)."""

    rule: str
    cand: Cand
    detail: dict
    label: bool | None = None


@dataclass(slots=True, frozen=True)
class Vote:
    """The outcome of one compare task: `winner` is "a"/"b"/"tie"/"both_bad" or None; `reason` says
    why there is no pair (None when there is one). Tasks with the same votes share one (see
    compare_majority): read it, never change it."""

    winner: str | None
    reason: str | None
    votes: dict
    share: float
    margin: int


# Prompts -------------------------------------------------------------------------------------------


def _message_content(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def prompt_messages(record: ItemRecord) -> list[dict]:
    """The conversation before the answer: the item's messages without a trailing assistant turn,
    or one user turn holding the prompt. Only role and content are kept (a stable schema)."""
    messages = [
        {"role": str(m.get("role") or "user"), "content": _message_content(m.get("content"))}
        for m in (record.messages or [])
        if isinstance(m, dict)
    ]
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    if messages:
        return messages
    return [{"role": "user", "content": prompt_text(record)}]


def prompt_text(record: ItemRecord) -> str:
    """The prompt as one string: instruction then input when an item has both."""
    if record.prompt and record.text:
        return f"{record.prompt}\n\n{record.text}"
    if record.prompt or record.text:
        return record.prompt or record.text
    turns = [m for m in (record.messages or []) if isinstance(m, dict)]
    while turns and turns[-1].get("role") == "assistant":
        turns.pop()
    if len(turns) == 1:
        return _message_content(turns[0].get("content"))
    return "\n\n".join(f"{m.get('role', 'user')}: {_message_content(m.get('content'))}" for m in turns)


def display_text(record: ItemRecord) -> str:
    """The text labels and spans refer to (as Item.display_text): text, else prompt, else the last
    user message."""
    if record.text or record.prompt:
        return record.text or record.prompt
    for message in reversed(record.messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_content(message.get("content"))
    return ""


def alpaca_fields(record: ItemRecord) -> tuple[str, str]:
    """(instruction, input): the prompt is the instruction and the text its input when both exist."""
    if record.prompt and record.text:
        return record.prompt, record.text
    return prompt_text(record), ""


# Compare votes -------------------------------------------------------------------------------------


def compare_majority(task: Task, *, min_margin: int = 1) -> Vote:
    """Majority of the votes cast on one compare task.

    A strict majority (more than half the votes) decides; ties and both_bad majorities make no pair;
    a/b wins also need `min_margin` more votes than the other side.
    """
    if task.majority is not None and task.majority[0] == min_margin:
        return task.majority[1]
    if task.adjudicated:
        vote = _compare_majority(task, min_margin)
    else:
        # The same votes make the same Vote: a few hundred distinct ones cover a large export.
        # (Votes are read, never changed, so tasks can share one.)
        key = (*task.votes.items(), min_margin)
        vote = _VOTES_SEEN.get(key)
        if vote is None:
            vote = _compare_majority(task, min_margin)
            if len(_VOTES_SEEN) < 10_000:
                _VOTES_SEEN[key] = vote
    task.majority = (min_margin, vote)
    return vote


_VOTES_SEEN: dict[tuple, Vote] = {}


def _compare_majority(task: Task, min_margin: int) -> Vote:
    votes = task.votes
    cast = sum(votes.values())
    ruled = task.adjudicated.get("choice") if task.adjudicated else None
    if ruled in ("a", "b", "tie", "both_bad"):
        share = votes.get(ruled, 0) / cast if cast else 0.0
        reason = ruled if ruled in ("tie", "both_bad") else None
        return Vote(
            ruled,
            reason,
            dict(votes),
            share,
            votes.get(ruled, 0) - votes.get("b" if ruled == "a" else "a", 0),
        )
    if not cast:
        return Vote(None, "no_votes", {}, 0.0, 0)
    top = max(votes, key=votes.__getitem__)
    top_n = votes[top]
    share = top_n / cast
    if top_n * 2 <= cast:
        return Vote(None, "no_majority", dict(votes), share, 0)
    if top in ("tie", "both_bad"):
        return Vote(top, top, dict(votes), share, 0)
    margin = top_n - votes.get("b" if top == "a" else "a", 0)
    if margin < min_margin:
        return Vote(top, "margin_below_min", dict(votes), share, margin)
    return Vote(top, None, dict(votes), share, margin)


def compare_pair(record: ItemRecord, task: Task, *, min_margin: int = 1) -> Pair | str:
    vote = compare_majority(task, min_margin=min_margin)
    if vote.reason:
        return vote.reason
    a, b = record.candidates.get(task.a_id), record.candidates.get(task.b_id)
    if a is None or b is None:
        return "candidate_missing"
    chosen, rejected = (a, b) if vote.winner == "a" else (b, a)
    detail = {"votes": vote.votes, "margin": vote.margin, "share": round(vote.share, 4), "task_id": task.id}
    if task.adjudicated:
        detail["adjudicated"] = True
    if chosen.scores and revision_of(chosen, rejected):
        # Reviewers confirmed the revision over the draft it revised (Constitutional AI's pairs).
        scores = chosen.scores
        detail |= {"rounds": scores.get("rounds"), "principles": scores.get("principles") or []}
        return Pair(CRITIQUE_REVISE, chosen, rejected, detail)
    return Pair(COMPARE_MAJORITY, chosen, rejected, detail)


# Ratings ---------------------------------------------------------------------------------------------


def candidate_ratings(record: ItemRecord) -> dict[int, list[int]]:
    """The ratings each candidate received, from the item's rate tasks (an adjudicated rating
    replaces the annotators' ones)."""
    ratings: dict[int, list[int]] = {}
    for task in record.tasks:
        if task.mode != "rate" or task.a_id is None:
            continue
        ruled = task.adjudicated.get("rating") if task.adjudicated else None
        if isinstance(ruled, int) and 1 <= ruled <= 5:
            ratings[task.a_id] = [ruled]
        elif task.ratings:
            ratings.setdefault(task.a_id, []).extend(task.ratings)
    return ratings


def mean_ratings(ratings: dict[int, list[int]]) -> dict[int, float]:
    return {cid: sum(values) / len(values) for cid, values in ratings.items() if values}


def _rank(cid: int, values: list[int]) -> tuple:
    """Ordering key of a rated candidate: highest mean first; among equals the one with more
    ratings, then the older candidate."""
    return (-sum(values) / len(values), -len(values), cid)


def _ranked(means: dict[int, float], ratings: dict[int, list[int]]) -> list[int]:
    return sorted(means, key=lambda cid: _rank(cid, ratings[cid]))


def rating_pair_best_worst(
    record: ItemRecord, ratings: dict[int, list[int]], *, min_gap: float = 1.0
) -> Pair | str:
    """Best-rated against worst-rated candidate (distilabel's argmax/argmin), if the mean ratings
    differ by at least `min_gap`."""
    # The first and the last in _ranked's order, found in one pass (no means dict, no sort).
    best = worst = None
    for cid, values in ratings.items():
        if values:
            rank = _rank(cid, values)
            if best is None:
                best = worst = rank
            elif rank < best:
                best = rank
            elif rank > worst:
                worst = rank
    if best is worst:
        return "fewer_than_two_rated"
    gap = worst[0] - best[0]  # the best mean minus the worst
    if gap < min_gap or gap <= 0:
        return "rating_gap_below_min"
    return _rating_pair(record, RATING_BEST_WORST, best[2], worst[2], gap, ratings)


def rating_pair_best_random(
    record: ItemRecord, ratings: dict[int, list[int]], *, min_gap: float = 1.0, rng: random.Random
) -> Pair | str:
    """Best-rated against one lower-rated candidate drawn at random (Zephyr's rule, "to encourage
    diversity"), among those at least `min_gap` below the best."""
    means = mean_ratings(ratings)
    if len(means) < 2:
        return "fewer_than_two_rated"
    order = _ranked(means, ratings)
    best = order[0]
    lower = [cid for cid in order[1:] if means[best] - means[cid] >= min_gap and means[cid] < means[best]]
    if not lower:
        return "rating_gap_below_min"
    other = rng.choice(lower)
    return _rating_pair(record, RATING_BEST_RANDOM, best, other, means[best] - means[other], ratings)


def _rating_pair(record, rule, best, other, gap, ratings) -> Pair | str:
    chosen, rejected = record.candidates.get(best), record.candidates.get(other)
    if chosen is None or rejected is None:
        return "candidate_missing"
    return Pair(
        rule,
        chosen,
        rejected,
        {
            "ratings": {"chosen": ratings[best], "rejected": ratings[other]},
            "gap": round(gap, 4),
        },
    )


def rating_spread_agreement(ratings: dict[int, list[int]]) -> list[float]:
    """Per candidate rated at least twice: 1 - mean pairwise |difference| / 4 (1.0 when every rater
    gave the same score), as the project's stats compute it."""
    values = (metrics.unit_agreement(v, kind="ordinal") for v in ratings.values() if len(v) >= 2)
    return [v for v in values if v is not None]


def rating_alpha_agreement(ratings: dict[int, list[int]]) -> float | None:
    """Krippendorff's alpha (ordinal) over the item's rated candidates; None when no candidate was
    rated twice. Everyone giving the same score is full agreement (alpha itself is 0/0 there)."""
    pairable = [v for v in ratings.values() if len(v) >= 2]
    if not pairable:
        return None
    if len({r for v in pairable for r in v}) == 1:
        return 1.0
    return metrics.krippendorff_alpha_ordinal(pairable)


# Edits -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Edit:
    draft: Cand
    result: Cand
    changed: bool
    order: int  # submission order within the item


def edits(record: ItemRecord) -> list[Edit]:
    """Every edit submitted on the item: the draft, what the reviewer made of it, and whether they
    changed it (normalised text differs) or accepted it as it was."""
    out = []
    order = 0
    for task in record.tasks:
        if task.mode != "edit":
            continue
        draft = record.candidates.get(task.a_id)
        if draft is None:
            continue
        judgments = task.judgments
        ruled = (task.adjudicated or {}).get("text")
        if isinstance(ruled, str):
            ruled_id = (task.adjudicated or {}).get("candidate")
            judgments = [Judgment({"text": ruled}, ruled_id)]
        for j in judgments:
            order += 1
            result = record.candidates.get(j.result_candidate_id) if j.result_candidate_id else None
            if result is None:
                text = (j.value or {}).get("text")
                if not isinstance(text, str):
                    continue
                result = Cand(None, text, source="human", parent_id=draft.id)
            changed = not same_text(result, draft)
            out.append(Edit(draft, result if changed else draft, changed, order))
    return out


def edit_pairs(record: ItemRecord, item_edits: list[Edit]) -> list[Pair]:
    """chosen = the human edit, rejected = the draft it was made from; one pair per distinct edit."""
    pairs, seen = [], set()
    for edit in item_edits:
        if not edit.changed:
            continue
        key = (edit.draft.id, edit.result.norm or normalise_text(edit.result.text))
        if key in seen:
            continue
        seen.add(key)
        pairs.append(Pair(EDIT_VS_DRAFT, edit.result, edit.draft, {"draft_id": edit.draft.id}))
    return pairs


# SFT ---------------------------------------------------------------------------------------------------


def sft_pick(
    record: ItemRecord,
    item_edits: list[Edit],
    ratings: dict[int, list[int]],
    *,
    min_rating: float = 4.0,
    auto: bool = True,
) -> Pick | str:
    """The one completion to train on: a human edit (the best-rated one, else the latest), else a
    draft a reviewer accepted unchanged, else the best-rated candidate if it averages `min_rating`,
    else (with `auto`, for an item nobody reviewed) the latest candidate its recipe auto-accepted."""
    means = mean_ratings(ratings)
    changed = [e for e in item_edits if e.changed]
    if changed:
        best = max(changed, key=lambda e: (means.get(e.result.id, 0.0), e.order))
        return Pick(HUMAN_EDIT, best.result, {"draft_id": best.draft.id, "edits": len(changed)})
    accepted = [e for e in item_edits if not e.changed]
    if accepted:
        return Pick(ACCEPTED_DRAFT, accepted[-1].draft, {"accepted_by": len(accepted)})
    if not means:
        if auto:
            accepted_ids = [cid for cid, c in record.candidates.items() if auto_accepted(c) and c.text]
            if accepted_ids:
                cand = record.candidates[max(accepted_ids)]
                return Pick(AUTO_ACCEPTED, cand, {"scores": auto_evidence(cand)})
        return "not_reviewed"
    best_id = _ranked(means, ratings)[0]
    if means[best_id] < min_rating:
        return "rating_below_min"
    cand = record.candidates.get(best_id)
    if cand is None:
        return "candidate_missing"
    return Pick(BEST_RATED, cand, {"ratings": ratings[best_id]})


def auto_evidence(cand: Cand) -> dict:
    """The scores that made the recipe accept a candidate (for the row's meta column)."""
    keep = ("agreement", "curation_score", "votes", "route", "samples")
    return {k: v for k, v in (cand.scores or {}).items() if k in keep}


def auto_accepted_labels(record: ItemRecord) -> tuple[Cand, list[str]] | None:
    """For an item with no label task: the latest auto-accepted candidate with a label, and its
    labels."""
    found = [c for c in record.candidates.values() if auto_accepted(c) and c.label]
    if not found:
        return None
    cand = max(found, key=lambda c: c.id or 0)
    labels = [cand.label] if isinstance(cand.label, str) else _labels_of({"labels": cand.label})
    return (cand, labels) if labels else None


def rationale_for(record: ItemRecord, item_edits: list[Edit], labels: list[str] | None) -> tuple[str, dict]:
    """The rationale (distilling step by step) that goes with the item's consensus labels: a
    reviewer's edit of a rationale-recipe candidate (its latest), else the model's rationale when its
    answer agrees with the labels; ("", reason) when none fits."""
    wanted = set(labels or ())

    def label_of(cand: Cand, fallback: Cand) -> set:
        value = cand.label if cand.label else fallback.label
        return {value} if isinstance(value, str) else set(value or ())

    edited = [e for e in item_edits if e.draft.recipe == "rationale"]
    for edit in sorted(edited, key=lambda e: -e.order):
        if label_of(edit.result, edit.draft) == wanted:
            rule = "human_edit" if edit.changed else "accepted_draft"
            return edit.result.text, {"rationale": rule, "rationale_candidate": edit.draft.id}
    drafts = [c for c in record.candidates.values() if c.recipe == "rationale" and c.source != "human"]
    for cand in sorted(drafts, key=lambda c: -(c.id or 0)):
        if label_of(cand, cand) == wanted and cand.text:
            return cand.text, {"rationale": "model", "rationale_candidate": cand.id}
    return "", {"rationale": "none_agreeing" if drafts else "none"}


# KTO ---------------------------------------------------------------------------------------------------


def kto_picks(
    record: ItemRecord,
    item_edits: list[Edit],
    ratings: dict[int, list[int]],
    *,
    desirable_min: float = 4.0,
    undesirable_max: float = 2.0,
    min_margin: int = 1,
) -> tuple[list[Pick], Counter]:
    """Unpaired examples, one per candidate: desirable from accepted edits and ratings >=
    `desirable_min`; undesirable from ratings <= `undesirable_max` and both_bad compare majorities.
    A candidate that earns both labels is dropped (`conflicting_labels`)."""
    dropped: Counter = Counter()
    picks: dict[object, Pick] = {}
    conflicts: set = set()

    def add(pick: Pick) -> None:
        key = pick.cand.id if pick.cand.id is not None else ("text", pick.cand.text)
        held = picks.get(key)
        if held is None:
            picks[key] = pick
        elif held.label != pick.label:
            conflicts.add(key)

    for edit in item_edits:
        add(Pick(ACCEPTED_EDIT, edit.result, {"draft_id": edit.draft.id, "changed": edit.changed}, True))
    for cid, mean in mean_ratings(ratings).items():
        cand = record.candidates.get(cid)
        if cand is None:
            continue
        if mean >= desirable_min:
            add(Pick(RATING_DESIRABLE, cand, {"ratings": ratings[cid]}, True))
        elif mean <= undesirable_max:
            add(Pick(RATING_UNDESIRABLE, cand, {"ratings": ratings[cid]}, False))
    for task in record.tasks:
        if task.mode != "compare":
            continue
        vote = compare_majority(task, min_margin=min_margin)
        if vote.winner == "both_bad":
            for cid in (task.a_id, task.b_id):
                cand = record.candidates.get(cid)
                if cand is not None:
                    add(Pick(BOTH_BAD, cand, {"votes": vote.votes, "task_id": task.id}, False))
    for key in conflicts:
        picks.pop(key, None)
        dropped["conflicting_labels"] += 1
    return list(picks.values()), dropped


def kto_weights(desirable: int, undesirable: int) -> dict:
    """TRL's advice: weight x count of desirable to undesirable between 1:1 and 4:3. Keeps the
    undesirable weight at 1 and scales the desirable one to bring the ratio to 1:1 when outside."""
    if not desirable or not undesirable:
        return {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    ratio = desirable / undesirable
    weight = 1.0 if 1.0 <= ratio <= 4 / 3 else round(undesirable / desirable, 4)
    return {"desirable_weight": weight, "undesirable_weight": 1.0}


# Labels and spans ------------------------------------------------------------------------------------


def _labels_of(value) -> list[str] | None:
    if not isinstance(value, dict):
        return None
    labels = value.get("labels", value.get("label"))
    if isinstance(labels, str):
        return [labels]
    if isinstance(labels, list) and all(isinstance(x, str) for x in labels):
        return labels
    return None


def label_majority(task: Task) -> tuple[list[str] | None, float, str | None]:
    """The label set more than half the annotators chose (or an adjudicator ruled): (labels, share,
    reason if none)."""
    sets = [_labels_of(j.value) for j in task.judgments]
    sets = [tuple(sorted(set(s))) for s in sets if s is not None]
    ruled = _labels_of(task.adjudicated)
    if ruled is not None:
        top = tuple(sorted(set(ruled)))
        return list(top), (sets.count(top) / len(sets) if sets else 0.0), None
    if not sets:
        return None, 0.0, "no_labels"
    top, n = Counter(sets).most_common(1)[0]
    share = n / len(sets)
    if n * 2 <= len(sets):
        return None, share, "no_label_majority"
    return list(top), share, None


def _spans_of(value) -> list[tuple[int, int, str]] | None:
    if not isinstance(value, dict) or not isinstance(value.get("spans"), list):
        return None
    out = []
    for span in value["spans"]:
        if isinstance(span, dict) and isinstance(span.get("start"), int) and isinstance(span.get("end"), int):
            out.append((span["start"], span["end"], str(span.get("label", ""))))
    return out


def span_majority(task: Task) -> tuple[list[dict] | None, float, str | None]:
    """Spans (exact start, end and label) marked by more than half the annotators; the agreement is
    the mean F1 of each annotator's spans against that consensus."""
    sets = [_spans_of(j.value) for j in task.judgments]
    sets = [set(s) for s in sets if s is not None]
    ruled = _spans_of(task.adjudicated)
    if ruled is not None:
        consensus = set(ruled)
    elif not sets:
        return None, 0.0, "no_spans"
    else:
        counts = Counter(span for s in sets for span in s)
        consensus = {span for span, n in counts.items() if n * 2 > len(sets)}
    agreement = fmean(metrics.span_f1(s, consensus) for s in sets) if sets else 1.0
    spans = [{"start": s, "end": e, "label": label} for s, e, label in sorted(consensus)]
    return spans, agreement, None


def label_agreement(task: Task, *, ner: bool) -> float | None:
    if ner:
        spans, agreement, reason = span_majority(task)
    else:
        labels, agreement, reason = label_majority(task)
    return None if reason in ("no_labels", "no_spans") else agreement


_TOKEN = re.compile(r"\S+")


def whitespace_tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]


def bio_tags(text: str, spans: list[dict]) -> tuple[list[tuple[int, int, str]], list[str], int]:
    """Whitespace tokens with their character offsets and BIO tags from character spans. A token
    overlapping a span takes its label (B- on the span's first token); answers how many spans did
    not start and end on token boundaries (`misaligned`)."""
    tokens = whitespace_tokens(text)
    tags = ["O"] * len(tokens)
    misaligned = 0
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        start, end, label = span["start"], span["end"], span["label"]
        inside = [i for i, (s, e, _) in enumerate(tokens) if s < end and e > start]
        if not inside:
            misaligned += 1
            continue
        if tokens[inside[0]][0] != start or tokens[inside[-1]][1] != end:
            misaligned += 1
        for n, i in enumerate(inside):
            if tags[i] == "O":
                tags[i] = ("B-" if n == 0 else "I-") + label
    return tokens, tags, misaligned


# Item agreement -----------------------------------------------------------------------------------


def item_agreement(
    record: ItemRecord, ratings: dict[int, list[int]], *, rating_method: str = "spread"
) -> float:
    """One number per item for the min_agreement filter and the `agreement` column: the mean, over
    the item's judged tasks, of the share of the majority (compare, label), the rating agreement
    (spread, or Krippendorff's alpha), or span F1 (NER). 1.0 when nothing was judged twice."""
    parts: list[float] = []
    for task in record.tasks:
        if task.mode == "compare":
            if sum(task.votes.values()) >= 2:
                parts.append(compare_majority(task).share)
        elif task.mode == "label" and len(task.judgments) >= 2:
            ner = any(_spans_of(j.value) is not None for j in task.judgments)
            value = label_agreement(task, ner=ner)
            if value is not None:
                parts.append(value)
    if rating_method == "alpha":
        alpha = rating_alpha_agreement(ratings)
        if alpha is not None:
            parts.append(alpha)
    elif any(len(v) >= 2 for v in ratings.values()):
        parts.extend(rating_spread_agreement(ratings))
    if not parts:
        return 1.0
    return round(float(parts[0]) if len(parts) == 1 else fmean(parts), 4)


def reference_text(reference) -> str:
    """An imported reference as text: a string as-is, {"text"/"answer": ...}, else empty."""
    if isinstance(reference, str):
        return reference
    if isinstance(reference, dict):
        for key in ("text", "answer", "output", "completion"):
            if isinstance(reference.get(key), str):
                return reference[key]
    return ""


def reference_labels(reference, *, ner: bool) -> tuple[list[str], list[dict]]:
    """Labels or spans in an imported reference: ["pos"], "pos", {"labels": [...]}, {"spans": [...]}
    or a list of span objects."""
    if ner:
        if isinstance(reference, list):
            reference = {"spans": reference}
        spans = _spans_of(reference) or []
        return [], [{"start": s, "end": e, "label": label} for s, e, label in spans]
    if isinstance(reference, str):
        return [reference] if reference else [], []
    if isinstance(reference, list) and all(isinstance(x, str) for x in reference):
        return list(reference), []
    return _labels_of(reference) or [], []


def item_rng(seed: int, item_id: int) -> random.Random:
    """A per-item generator, so a random pick depends only on the seed and the item."""
    return random.Random(seed * 1_000_003 + item_id)
