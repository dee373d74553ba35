"""Distilling step by step (Hsieh et al., arXiv 2305.02301).

The teacher answers with a rationale and then "So the answer is ...". Each record keeps
{input, label, rationale}; reviewers rate and edit label and rationale separately; a rationale whose
label contradicts the gold label is dropped (flagged, never exported as if correct).
"""

from __future__ import annotations

import random
import re

from . import ParseError
from .self_consistency import answer_normalise

DEFAULTS = {
    "num_examples": 3,  # few-shot chain-of-thought exemplars (from items with a reference + rationale)
    "temperature": 0.0,  # greedy, as the teacher's single rationale per input
    "max_new_tokens": 160,
    "answer_marker": "So the answer is",
    "drop_contradicting": True,  # drop rationales whose label contradicts the gold label
    "alpha": 0.5,  # repo's loss weight: alpha * L_label + (1 - alpha) * L_rationale (for exports)
}


def rationale_parse(
    completion: str, *, marker: str = DEFAULTS["answer_marker"], labels: list[str] | None = None
) -> dict:
    """{"rationale", "answer"}: the text before the last marker, and what follows it up to the end of
    the sentence. With `labels`, the answer must name exactly one of them. Missing marker, empty
    rationale or answer, or an answer outside the labels: ParseError."""
    idx = completion.lower().rfind(marker.lower())
    if idx < 0:
        raise ParseError(f'No "{marker}" in the output.', raw=completion)
    rationale = completion[:idx].strip()
    rest = completion[idx + len(marker) :].strip().lstrip(":").strip()
    answer = rest.splitlines()[0] if rest else ""
    answer = re.split(r"(?<=[^\d])\.(\s|$)", answer)[0].strip().strip('"').strip()
    if not rationale:
        raise ParseError("The output has an answer but no rationale before it.", raw=completion)
    if not answer:
        raise ParseError("The answer after the marker is empty.", raw=completion)
    if labels is not None:
        label = answer_normalise(answer, labels=labels)
        if label is None:
            raise ParseError(f"The answer {answer!r} is not one of: {', '.join(labels)}.", raw=completion)
        answer = label
    return {"rationale": rationale, "answer": answer}


def contradicts_gold(answer: str, gold) -> bool:
    """True when the item has a gold label and the rationale's answer is a different one."""
    if gold in (None, "", []):
        return False
    golds = gold if isinstance(gold, list) else [gold]
    return all(str(answer).strip().lower() != str(g).strip().lower() for g in golds)


def exemplars(
    examples: list[dict],
    *,
    rng: random.Random,
    n: int = DEFAULTS["num_examples"],
    marker: str = DEFAULTS["answer_marker"],
) -> str:
    """Few-shot blocks "Input: ...\\nAnswer: <rationale> So the answer is <label>." from
    [{"input", "rationale", "label"}]."""
    picked = rng.sample(examples, min(n, len(examples)))
    return "\n\n".join(
        f"Input: {e['input'].strip()}\nAnswer: {e['rationale'].strip()} {marker} {e['label']}."
        for e in picked
    )


def record(*, input_text: str, label: str, rationale: str, include_rationale: bool = True) -> dict:
    """The export record; `include_rationale=False` drops the rationale (plain label data)."""
    row = {"input": input_text, "label": label}
    if include_rationale:
        row["rationale"] = rationale
    return row


def multitask_rows(*, input_text: str, label: str, rationale: str) -> list[dict]:
    """The step-by-step student's two tasks: "predict: " -> label and "explain: " -> rationale."""
    return [
        {"prompt": f"predict: {input_text}", "completion": label, "task": "label"},
        {"prompt": f"explain: {input_text}", "completion": rationale, "task": "rationale"},
    ]
