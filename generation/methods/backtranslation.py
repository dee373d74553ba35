"""Instruction backtranslation (Humpback; Li et al., arXiv 2308.06259).

Self-augment: the model writes the instruction an unlabelled text would answer (here few-shot from
the project's seed pairs, output -> instruction, instead of a fine-tuned backward model).
Self-curate: the model rates each (instruction, text) pair 1-5 with the paper's rubric and ends with
"Score: n"; pairs at or above the threshold (paper: 5) are kept.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from . import ParseError

DEFAULTS = {
    "num_examples": 3,  # seed pairs shown in the self-augmentation prompt
    "temperature": 0.7,  # paper: nucleus sampling T 0.7, p 0.9
    "top_p": 0.9,
    "max_new_tokens": 96,
    "curate_max_new_tokens": 160,
    "threshold": 5,  # paper's main setting A5: keep score >= 5
    "route": "review",  # "review": kept pairs go to the queue; "export": accepted without review
    "max_example_chars": 600,  # seed outputs are cut to this in the few-shot prompt
}

ROUTES = ("review", "export")

# distilabel's InstructionBacktranslation: `(.+?)Score: (\d)`; reasoning is what precedes the score.
SCORE_RE = re.compile(r"(.+?)Score: (\d)", re.DOTALL)


@dataclass
class Curation:
    score: int
    reasoning: str


def curation_parse(completion: str) -> Curation:
    """The first "Score: n" and the reasoning before it. A score outside 1-5, or no score line, is a
    ParseError (recorded with the raw output), never a guess."""
    match = SCORE_RE.search(completion)
    if not match:
        raise ParseError('No "Score: <1-5>" line in the output.', raw=completion)
    score = int(match.group(2))
    if not 1 <= score <= 5:
        raise ParseError(f"Score {score} is outside the 1-5 scale.", raw=completion)
    return Curation(score=score, reasoning=match.group(1).strip())


def is_kept(score: int | None, *, threshold: int = DEFAULTS["threshold"]) -> bool:
    return score is not None and score >= threshold


def segment_ok(text: str, *, min_chars: int = 40, max_chars: int = 4000) -> str | None:
    """Why an unlabelled segment is not worth augmenting (too short/long), or None."""
    length = len(text.strip())
    if length < min_chars:
        return f"shorter than {min_chars} characters"
    if length > max_chars:
        return f"longer than {max_chars} characters"
    return None


def augment_examples(
    seed_pairs: list[dict],
    *,
    rng: random.Random,
    n: int = DEFAULTS["num_examples"],
    max_chars: int = DEFAULTS["max_example_chars"],
) -> str:
    """Reversed seed pairs (response first, then the instruction it answers) for the few-shot
    self-augmentation prompt. `seed_pairs`: [{"instruction", "output"}]."""
    if not seed_pairs:
        raise ValueError(
            "Backtranslation needs seed (instruction, output) pairs; import some seed tasks first."
        )
    blocks = []
    for pair in rng.sample(seed_pairs, min(n, len(seed_pairs))):
        output = pair["output"].strip()
        if len(output) > max_chars:
            output = output[:max_chars].rsplit(" ", 1)[0] + " ..."
        blocks.append(f"Response:\n{output}\nInstruction: {pair['instruction'].strip()}")
    return "\n\n".join(blocks)


def instruction_parse(completion: str) -> str:
    """The instruction the model wrote: the first non-empty line, without an "Instruction:" label.
    Empty output, or a next "Response:" block with nothing before it, is a ParseError."""
    text = re.split(r"\n\s*Response\s*:", completion)[0]
    for line in text.splitlines():
        line = re.sub(r"^\s*(Instruction|Question)\s*:\s*", "", line, flags=re.IGNORECASE).strip()
        if line:
            return line
    raise ParseError("The model wrote no instruction.", raw=completion)


def precision_recall(pairs: list[tuple[bool, bool]]) -> dict:
    """Curator quality against a hand-labelled dev set, as in the paper's selector table.

    `pairs`: (kept by the curator, good per the human label). Precision = good among kept;
    recall = kept among good. None where the denominator is zero.
    """
    tp = sum(1 for kept, good in pairs if kept and good)
    fp = sum(1 for kept, good in pairs if kept and not good)
    fn = sum(1 for kept, good in pairs if not kept and good)
    return {
        "n": len(pairs),
        "positives": tp + fn,
        "kept": tp + fp,
        "true_positives": tp,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }
