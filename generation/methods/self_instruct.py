"""Self-Instruct (Wang et al., arXiv 2212.10560; yizhongw/self-instruct).

The model continues a numbered list of 8 instructions (6 seed + 2 machine-written, shuffled) with
new ones; each new instruction is filtered (length, keywords, first character), checked for novelty
with ROUGE-L against every instruction so far, classified (classification or not) and given
instances (output-first for classification tasks, input-first for the rest), which are filtered too.

Rejected instructions and instances are kept with a reason: the functions here answer the reason
instead of dropping silently.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field

from rouge_score import rouge_scorer

from . import ParseError

DEFAULTS = {
    # instruction generation (paper: 8 in-context instructions, 2 of them machine-written)
    "num_prompt_instructions": 8,
    "num_machine_instructions": 2,
    "temperature": 0.7,
    "top_p": 0.5,
    "presence_penalty": 2.0,
    "max_new_tokens": 256,
    "classification_only": False,
    # instruction filters
    "min_words": 3,  # an instruction of <= min_words words is dropped
    "max_words": 150,  # an instruction of > max_words words is dropped
    "blacklist": [
        "image",
        "images",
        "graph",
        "graphs",
        "picture",
        "pictures",
        "file",
        "files",
        "map",
        "maps",
        "draw",
        "plot",
        "go to",
    ],
    "banned_prefixes": ["Write a program"],
    # novelty
    "rouge_threshold": 0.7,  # rejected if max ROUGE-L F1 against any existing instruction is > this
    "nearest_k": 10,
    # instance generation (paper: greedy, presence penalty 1.5, at most 5 instances per task)
    "instance_temperature": 0.0,
    "instance_presence_penalty": 1.5,
    "instance_max_new_tokens": 300,
    "max_instances": 5,
}


# -- instruction generation ----------------------------------------------------------------------


def instruction_clean(instruction: str) -> str:
    return re.sub(r"\s+", " ", instruction).strip().rstrip(":")


def prompt_instructions_sample(
    seed_instructions: list[str],
    machine_instructions: list[str],
    *,
    rng: random.Random,
    num_prompt_instructions: int = 8,
    num_machine_instructions: int = 2,
) -> list[str]:
    """The in-context instructions for one request: up to `num_machine_instructions` from the
    machine pool, the rest from the seeds, shuffled (as bootstrap_instructions.py does)."""
    chosen = rng.sample(machine_instructions, min(num_machine_instructions, len(machine_instructions)))
    wanted = num_prompt_instructions - len(chosen)
    if len(seed_instructions) < wanted:
        raise ValueError(
            f"Self-instruct needs at least {wanted} seed instructions; the project has "
            f"{len(seed_instructions)}. Import more seed tasks."
        )
    chosen += rng.sample(seed_instructions, wanted)
    rng.shuffle(chosen)
    return chosen


def numbered_list(instructions: list[str]) -> str:
    """`1. ...` to `n. ...` and the open `n+1.` the model continues."""
    lines = [f"{n}. {instruction_clean(text)}" for n, text in enumerate(instructions, start=1)]
    lines.append(f"{len(instructions) + 1}.")
    return "\n".join(lines)


def instructions_parse(completion: str, *, first_number: int) -> list[str]:
    """Splits the model's continuation of the numbered list into instructions.

    The completion starts right after "`first_number`." and goes on with "`first_number+1`. ...".
    """
    # A chat model may repeat the open number ("9. ...") before the instruction.
    text = re.sub(rf"^\s*{first_number}\s?\.\s*", "", completion)
    # The stop sequence the repo uses: an empty line ends the list.
    text = text.strip().split("\n\n")[0]
    parts = re.split(r"\n\s*\d+\s?\.\s", "\n" + f"{first_number}. " + text.lstrip())
    return [re.sub(r"\s+", " ", p).strip() for p in parts if p.strip()]


def _has_word(word: str, text: str) -> bool:
    return re.search(rf"\b({re.escape(word)})\b", text, flags=re.IGNORECASE) is not None


def instruction_filter(
    instruction: str,
    *,
    min_words: int = DEFAULTS["min_words"],
    max_words: int = DEFAULTS["max_words"],
    blacklist: list[str] | None = None,
    banned_prefixes: list[str] | None = None,
) -> str | None:
    """The reason the paper's filters reject this instruction, or None when it passes."""
    blacklist = DEFAULTS["blacklist"] if blacklist is None else blacklist
    banned_prefixes = DEFAULTS["banned_prefixes"] if banned_prefixes is None else banned_prefixes
    text = instruction.strip()
    if not text:
        return "empty"
    words = len(text.split())
    if words <= min_words:
        return f"too short ({words} words; needs more than {min_words})"
    if words > max_words:
        return f"too long ({words} words; at most {max_words})"
    for word in blacklist:
        if _has_word(word, text):
            return f'contains the blacklisted word "{word}"'
    for prefix in banned_prefixes:
        if text.startswith(prefix):
            return f'starts with "{prefix}"'
    if text[0] in string.punctuation:
        return "starts with punctuation"
    if not text[0].isascii():
        return "starts with a non-ASCII character"
    return None


# -- novelty --------------------------------------------------------------------------------------


@dataclass
class Novelty:
    max_rouge_l: float
    nearest: list[dict] = field(default_factory=list)  # [{"instruction", "rouge_l"}], best first
    is_novel: bool = True


class RougeIndex:
    """The instructions so far; answers each new one's ROUGE-L F1 neighbours and adds the novel ones.

    Uses the maintained `rouge-score` package with the paper's settings (rougeL, no stemmer).
    """

    def __init__(self, instructions: list[str] | None = None):
        self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        self.instructions: list[str] = []
        for text in instructions or []:
            self.add(text)

    def add(self, instruction: str) -> None:
        self.instructions.append(instruction)

    def check(
        self,
        instruction: str,
        *,
        threshold: float = DEFAULTS["rouge_threshold"],
        k: int = DEFAULTS["nearest_k"],
    ) -> Novelty:
        scored = [
            (self._scorer.score(instruction, other)["rougeL"].fmeasure, n, other)
            for n, other in enumerate(self.instructions)
        ]
        if not scored:
            return Novelty(max_rouge_l=0.0, nearest=[], is_novel=True)
        # highest first; equal scores keep the pool's order
        scored.sort(key=lambda t: (-t[0], t[1]))
        nearest = [{"instruction": text, "rouge_l": round(score, 4)} for score, _, text in scored[:k]]
        best = scored[0][0]
        return Novelty(max_rouge_l=round(best, 4), nearest=nearest, is_novel=best <= threshold)


# -- classification or not ------------------------------------------------------------------------


def is_classification_examples(seed_tasks: list[dict], *, rng: random.Random, n: int = 12) -> str:
    """Few-shot lines from the project's own seed tasks, balanced between Yes and No."""
    yes = [t for t in seed_tasks if t.get("is_classification")]
    no = [t for t in seed_tasks if not t.get("is_classification")]
    picked = rng.sample(yes, min(len(yes), n // 2)) + rng.sample(no, min(len(no), n - min(len(yes), n // 2)))
    rng.shuffle(picked)
    return "\n\n".join(
        f"Task: {instruction_clean(t['instruction'])}\nIs it classification? "
        f"{'Yes' if t.get('is_classification') else 'No'}"
        for t in picked
    )


def is_classification_parse(completion: str) -> bool:
    match = re.match(r"\s*(yes|no)\b", completion, flags=re.IGNORECASE)
    if not match:
        raise ParseError('Expected the answer to start with "Yes" or "No".', raw=completion)
    return match.group(1).lower() == "yes"


# -- instances ------------------------------------------------------------------------------------


def instance_examples(
    seed_tasks: list[dict], *, is_classification: bool, rng: random.Random, n: int = 3
) -> str:
    """Worked examples from the seed tasks in the format the model should continue: output-first
    ("Class label: ...") for classification tasks, input-first for the rest."""
    pool = [
        t for t in seed_tasks if bool(t.get("is_classification")) == is_classification and t.get("instances")
    ]
    blocks = []
    for task in rng.sample(pool, min(n, len(pool))):
        inst = task["instances"][0]
        if is_classification:
            body = f"Class label: {inst['output'].strip()}\nInput: {inst.get('input', '').strip()}"
        else:
            body = f"Input: {inst.get('input', '').strip() or 'Not applicable.'}\nOutput: {inst['output'].strip()}"
        blocks.append(f"Task: {instruction_clean(task['instruction'])}\n{body}")
    return "\n\n".join(blocks)


def _input_output_split(text: str) -> tuple[str, str]:
    if re.search(r"Output\s*\d*\s*:", text):
        before, after = re.split(r"Output\s*\d*\s*:", text, maxsplit=1)
        inst_input, inst_output = before.strip(), after.strip()
    else:
        inst_input, inst_output = "", text.strip()
    # several pairs written in one block: keep the first output
    inst_output = re.split(r"Input\s*\d*\s*:", inst_output)[0].strip()
    inst_input = re.sub(r"^Input\s*\d*\s*:", "", inst_input).strip()
    if inst_input.lower() in ("not applicable.", "not applicable", "n/a"):
        inst_input = ""
    return inst_input, inst_output


def instances_parse(
    completion: str, *, is_classification: bool, prompt_tail: str = "", truncated: bool = False
) -> list[dict]:
    """Instances as [{"input", "output"}].

    `prompt_tail` is the marker the prompt ended with ("Class label:" or "Input:"); the completion
    continues it. Raises ParseError when there is no instance in the expected format. A completion
    cut off by length loses its last (incomplete) instance, as in the repo.
    """
    raw = prompt_tail + completion
    # The continuation must stop before the next task.
    raw = re.split(r"\n\s*Task\s*:", raw)[0].strip()
    instances: list[dict] = []
    if is_classification:
        for block in raw.split("Class label:")[1:]:
            label, _, rest = block.strip().partition("\n")
            rest = re.sub(r"^Input\s*\d*\s*:", "", rest.strip()).strip()
            if label.strip():
                instances.append({"input": rest, "output": label.strip()})
    else:
        blocks = re.split(r"Example\s?\d*\.?", raw) if re.search(r"Example\s?\d*\.?", raw) else [raw]
        for block in blocks:
            if re.search(r"Output\s*\d*\s*:", block):
                inst_input, inst_output = _input_output_split(block)
                instances.append({"input": inst_input, "output": inst_output})
    if truncated and instances:
        instances = instances[:-1]
    if not instances:
        expected = (
            '"Class label: ..." then the input' if is_classification else '"Input: ..." and "Output: ..."'
        )
        raise ParseError(f"No instance in the expected format ({expected}).", raw=completion)
    return instances


def instance_reject_reason(instance: dict) -> str | None:
    inp, out = instance["input"].strip(), instance["output"].strip()
    if not out:
        return "empty output"
    if inp == out:
        return "input equals output"
    if inp.endswith(":") or out.endswith(":"):
        return "input or output ends with a colon (cut off)"
    return None


def instances_filter(
    instances: list[dict], *, rng: random.Random, max_instances: int = DEFAULTS["max_instances"]
) -> tuple[list[dict], list[dict]]:
    """The paper's instance filters. Answers (kept, rejected), each rejected with its "reason"."""
    rejected, valid = [], []
    for inst in instances:
        reason = instance_reject_reason(inst)
        if reason:
            rejected.append({**inst, "reason": reason})
        else:
            valid.append({"input": inst["input"].strip(), "output": inst["output"].strip()})
    outputs_by_input: dict[str, set] = {}
    for inst in valid:
        if inst["input"]:
            outputs_by_input.setdefault(inst["input"], set()).add(inst["output"])
    if any(len(outs) > 1 for outs in outputs_by_input.values()):
        reason = "one input maps to different outputs"
        return [], rejected + [{**inst, "reason": reason} for inst in valid]
    unique, seen = [], set()
    for inst in valid:
        key = (inst["input"], inst["output"])
        if key in seen:
            rejected.append({**inst, "reason": "duplicate"})
            continue
        seen.add(key)
        unique.append(inst)
    if len(unique) > max_instances:
        keep = set(rng.sample(range(len(unique)), max_instances))
        rejected += [
            {**inst, "reason": f"over {max_instances} instances"}
            for n, inst in enumerate(unique)
            if n not in keep
        ]
        unique = [inst for n, inst in enumerate(unique) if n in keep]
    return unique, rejected


def seed_tasks_validate(rows: list) -> list[dict]:
    """Seed tasks in the repo's JSONL shape: {"instruction", "instances": [{"input","output"}],
    "is_classification"}; answers them cleaned or raises ValueError naming the bad row."""
    clean = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not str(row.get("instruction") or "").strip():
            raise ValueError(f"Seed task {number} needs an instruction.")
        instances = row.get("instances") or []
        if not isinstance(instances, list) or not all(
            isinstance(i, dict) and isinstance(i.get("output"), str) for i in instances
        ):
            raise ValueError(f'Seed task {number}: "instances" must be a list of {{"input", "output"}}.')
        clean.append(
            {
                "instruction": row["instruction"].strip(),
                "instances": [{"input": str(i.get("input") or ""), "output": i["output"]} for i in instances],
                "is_classification": bool(row.get("is_classification")),
                **({"id": str(row["id"])} if row.get("id") is not None else {}),
            }
        )
    return clean
