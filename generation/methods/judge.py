"""LLM-as-judge (Zheng et al., arXiv 2306.05685; FastChat llm_judge).

Rating: the model rates one candidate 1-5 against the project's rubric and writes "Rating: [[n]]".
Pairwise (pair-v2 format): the model compares two answers and ends with "[[A]]", "[[B]]" or "[[C]]"
(tie). The conservative rule judges both orders: a win counts only if both orders agree, else tie.

Agreement with humans is computed over tasks that both the judge and humans answered; the judge is
a distinct annotator and never enters human agreement, queues or exports.
"""

from __future__ import annotations

import re

from annotation.metrics import cohen_kappa

from . import ParseError

DEFAULTS = {
    "mode": "rate",  # "rate" (1-5 with the rubric) or "compare" (pairwise, both orders)
    "both_orders": True,  # conservative rule for compare
    "temperature": 0.0,  # FastChat judges greedily
    "max_new_tokens": 200,
}

MODES = ("rate", "compare")
JUDGE_USERNAME = "model-judge"

_RATING_RE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP_RE = re.compile(r"\[(\d+\.?\d*)\]")


def rating_parse(completion: str, *, low: int = 1, high: int = 5) -> int:
    """The "[[n]]" rating (FastChat's pattern, with its single-bracket backup). Not found, not a whole
    number, or outside low..high: ParseError."""
    match = _RATING_RE.search(completion) or _RATING_BACKUP_RE.search(completion)
    if not match:
        raise ParseError('No "Rating: [[n]]" in the output.', raw=completion)
    value = float(match.group(1))
    if value != int(value) or not low <= value <= high:
        raise ParseError(
            f"Rating {match.group(1)} is not a whole number from {low} to {high}.", raw=completion
        )
    return int(value)


def verdict_parse(completion: str) -> str:
    """ "A", "B" or "tie" from "[[A]]"/"[[B]]"/"[[C]]". FastChat checks them in that order; an output
    holding more than one different verdict is ambiguous and a ParseError here."""
    found = {v for v in ("A", "B", "C") if f"[[{v}]]" in completion}
    if not found:
        raise ParseError('No verdict "[[A]]", "[[B]]" or "[[C]]" in the output.', raw=completion)
    if len(found) > 1:
        raise ParseError(f"More than one verdict in the output: {sorted(found)}.", raw=completion)
    verdict = found.pop()
    return "tie" if verdict == "C" else verdict


def both_orders_combine(first: str, swapped: str) -> str:
    """The conservative rule. `first` judged (x as A, y as B); `swapped` judged (y as A, x as B).
    Answers "a" (x wins), "b" (y wins) or "tie"; a win counts only if both orders agree."""
    x_first = {"A": "a", "B": "b", "tie": "tie"}[first]
    x_swapped = {"A": "b", "B": "a", "tie": "tie"}[swapped]
    return x_first if x_first == x_swapped and x_first != "tie" else "tie"


def agreement(pairs: list[tuple]) -> dict:
    """Judge vs human on the tasks both answered: agreement rate and Cohen's kappa.

    `pairs`: (judge value, human value). For compare choices, "both_bad" from a human counts as a tie.
    """
    norm = [(_tie(j), _tie(h)) for j, h in pairs]
    n = len(norm)
    agreed = sum(1 for j, h in norm if j == h)
    kappa = cohen_kappa([j for j, _ in norm], [h for _, h in norm]) if n else None
    without_ties = [(j, h) for j, h in norm if j != "tie" and h != "tie"]
    return {
        "n": n,
        "agreement": agreed / n if n else None,
        "kappa": kappa,
        "n_without_ties": len(without_ties),
        "agreement_without_ties": (
            sum(1 for j, h in without_ties if j == h) / len(without_ties) if without_ties else None
        ),
    }


def _tie(value):
    return "tie" if value == "both_bad" else value


def swap_consistency(rows: list[tuple[str, str]]) -> dict:
    """Share of pairs where the verdict survives swapping the answers (FastChat's position-bias
    check). rows: (verdict in first order, verdict in swapped order), each "A"/"B"/"tie"."""
    n = len(rows)
    same = sum(
        1
        for first, swapped in rows
        if {"A": "a", "B": "b", "tie": "tie"}[first] == {"A": "b", "B": "a", "tie": "tie"}[swapped]
    )
    return {"n": n, "consistent": same, "rate": same / n if n else None}
