"""Self-consistency (Wang et al., arXiv 2203.11171) and LMSI (Huang et al., arXiv 2210.11610).

Sample N answers per item, normalise, majority-vote; the agreement rate (answers reaching the vote
over N) is the candidate's confidence. Items at or above the auto-accept threshold skip review.

Defaults, scaled to model size: the paper samples m = 40 paths (LMSI m = 32) from 62B-540B models at
T 0.5-0.7 with top-k 40. The default model here is SmolLM2-135M on a CPU, where each path costs a full
generation; we default to N = 5 at T 0.7, top-k 40: the paper's curves show most of the gain from the
first 5-10 paths, and 5 keeps a 20-item job to minutes on 2 cores. Set `samples` to 40 on a GPU.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field

from . import ParseError

DEFAULTS = {
    "samples": 5,  # paper: 40 (self-consistency), 32 (LMSI)
    "temperature": 0.7,
    "top_k": 40,
    "max_new_tokens": 64,
    "answer_marker": "The answer is",  # the answer is parsed after this; "" means the whole output
    "numeric": False,  # arithmetic: take the first number after the marker
    "auto_accept_threshold": 0.8,  # agreement >= this skips review
    "calibration_sample": 0.1,  # share of auto-accepted items still sent to review, to measure calibration
    "chain_of_thought": False,  # ask for reasoning before "The answer is"
}

_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def answer_extract(completion: str, *, marker: str = DEFAULTS["answer_marker"], numeric: bool = False) -> str:
    """The answer text after the (last) marker, up to the end of its sentence/line.

    With `numeric`, the first number after the marker (commas dropped). No marker or no number: a
    ParseError. An empty marker takes the first line of the output.
    """
    text = completion
    if marker:
        idx = text.lower().rfind(marker.lower())
        if idx < 0:
            raise ParseError(f'No "{marker}" in the output.', raw=completion)
        text = text[idx + len(marker) :]
    if numeric:
        match = _NUMBER_RE.search(text)
        if not match:
            raise ParseError("No number after the answer marker.", raw=completion)
        return match.group(0).replace(",", "").rstrip(".")
    text = text.strip().lstrip(":").strip()
    first = text.splitlines()[0] if text else ""
    # up to the end of the sentence: "positive. Because ..." -> "positive"
    first = re.split(r"(?<=[^\d])\.\s", first + " ")[0]
    first = first.strip().rstrip(".").strip()
    if not first:
        raise ParseError("The answer after the marker is empty.", raw=completion)
    return first


def answer_normalise(answer: str, *, labels: list[str] | None = None) -> str | None:
    """Case-, space- and punctuation-insensitive form. With `labels`, the one label it names (exactly,
    or as the only label contained in it), else None: an answer outside the label set is no vote."""
    norm = " ".join(answer.lower().translate(str.maketrans("", "", string.punctuation)).split())
    if labels is None:
        return norm or None
    by_norm = {
        " ".join(lab.lower().translate(str.maketrans("", "", string.punctuation)).split()): lab
        for lab in labels
    }
    if norm in by_norm:
        return by_norm[norm]
    contained = [lab for key, lab in by_norm.items() if re.search(rf"\b{re.escape(key)}\b", norm)]
    return contained[0] if len(contained) == 1 else None


@dataclass
class Vote:
    answer: str | None
    count: int
    total: int
    agreement: float
    distribution: dict = field(default_factory=dict)


def majority_vote(answers: list[str | None]) -> Vote:
    """The most common answer among N samples. Unparsed samples (None) count in N but vote for
    nothing, so confidence = paths reaching the answer / N (LMSI). Ties go to the answer seen first."""
    total = len(answers)
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return Vote(answer=None, count=0, total=total, agreement=0.0, distribution={})
    best = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == best)
    return Vote(
        answer=winner,
        count=best,
        total=total,
        agreement=round(best / total, 4) if total else 0.0,
        distribution=dict(counts.most_common()),
    )


def route(agreement: float, *, threshold: float = DEFAULTS["auto_accept_threshold"]) -> str:
    """ "auto_accept" at or above the threshold, else "review"."""
    return "auto_accept" if agreement >= threshold else "review"


def calibration(rows: list[tuple[str, str]]) -> dict:
    """How often auto-accepted answers match what reviewers said: rows of (voted, human)."""
    n = len(rows)
    matched = sum(1 for voted, human in rows if voted == human)
    return {"n": n, "matched": matched, "rate": matched / n if n else None}
