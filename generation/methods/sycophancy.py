"""Synthetic anti-sycophancy data (Wei et al., arXiv 2308.03958; google/sycophancy-intervention).

From labelled classification items, claims "[input] is [label]" / "is not [label]" are wrapped in a
prompt where a user states an opinion. Randomised per example: name, age (30-90), two schools, the
user's opinion (agree/disagree), whether the claim is true, and the order of the choices. The target
is the truth of the claim, whatever the user thinks. Only prompts the model answers correctly with
the opinion removed are kept (the paper's essential filtration).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from . import ParseError

DEFAULTS = {
    "min_age": 30,
    "max_age": 90,
    "field": "Linguistics",
    "examples_per_item": 1,
    "filter_with_model": True,  # keep only prompts the model answers correctly without the opinion
    "max_new_tokens": 8,
    "temperature": 0.0,
}

# The paper's ten schools (US News mathematics ranking, June 2023).
SCHOOLS = [
    "Stanford University",
    "MIT",
    "Princeton University",
    "the University of Cambridge",
    "Harvard University",
    "University of California Berkeley",
    "Universite de Paris",
    "University of Oxford",
    "ETH Zurich",
    "Sorbonne Universite",
]

# The paper draws from 10,000 generated names; a project can supply its own list in
# params["names"]. This default mixes common given names and surnames from many languages.
_GIVEN = [
    "Aisha",
    "Alejandro",
    "Amara",
    "Anders",
    "Ananya",
    "Beatriz",
    "Chen",
    "Chiara",
    "Dmitri",
    "Elif",
    "Emeka",
    "Fatima",
    "Freya",
    "Giulia",
    "Hana",
    "Hiroshi",
    "Ines",
    "Ivan",
    "Jamal",
    "Jin",
    "Kofi",
    "Lars",
    "Leila",
    "Lucia",
    "Mateo",
    "Maya",
    "Mehmet",
    "Nadia",
    "Nikos",
    "Olga",
    "Omar",
    "Priya",
    "Rafael",
    "Rosa",
    "Sanjay",
    "Sofia",
    "Tariq",
    "Thandiwe",
    "Tomas",
    "Yara",
    "Yuki",
    "Zeynep",
]
_FAMILY = [
    "Adeyemi",
    "Andersson",
    "Bauer",
    "Chowdhury",
    "Costa",
    "Dubois",
    "Fernandez",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kim",
    "Kowalski",
    "Li",
    "Mensah",
    "Moreau",
    "Nakamura",
    "Novak",
    "Okafor",
    "Park",
    "Patel",
    "Rossi",
    "Sato",
    "Schmidt",
    "Silva",
    "Singh",
    "Tanaka",
    "Wang",
    "Yilmaz",
]
NAMES = [f"{g} {f}" for g in _GIVEN for f in _FAMILY]  # 1,260 names

CHOICES = " (A) Agree\n (B) Disagree"
CHOICES_INVERTED = " (A) Disagree\n (B) Agree"


@dataclass
class Example:
    prompt: str  # with the user's opinion
    prompt_no_opinion: str  # the same claim and choice order, opinion stripped (for filtration)
    target: str  # "(A)" or "(B)"
    fields: dict  # what was randomised, stored as provenance


def claim(input_text: str, label: str, *, true: bool) -> str:
    text = input_text.strip().rstrip(".")
    return f'"{text}" {"is" if true else "is not"} {label}'


def example_fields(
    *,
    input_text: str,
    label: str,
    rng: random.Random,
    names: list[str] | None = None,
    schools: list[str] | None = None,
    params: dict | None = None,
) -> dict:
    """What is randomised for one example of an item whose true label is `label`, with the claim,
    the choices text and the target letter."""
    p = {**DEFAULTS, **(params or {})}
    fields = {
        "name": rng.choice(names or NAMES),
        "age": rng.randint(p["min_age"], p["max_age"]),
        "school1": rng.choice(schools or SCHOOLS),
        "school2": rng.choice(schools or SCHOOLS),
        "opinion": "agree" if rng.randint(0, 1) else "disagree",
        "claim_true": bool(rng.randint(0, 1)),
        "choices_inverted": bool(rng.randint(0, 1)),
        "label": label,
        "field": p["field"],
    }
    fields["claim"] = claim(input_text, label, true=fields["claim_true"])
    fields["choices"] = CHOICES_INVERTED if fields["choices_inverted"] else CHOICES
    agree_letter, disagree_letter = ("(B)", "(A)") if fields["choices_inverted"] else ("(A)", "(B)")
    fields["target"] = agree_letter if fields["claim_true"] else disagree_letter
    return fields


def example_build(*, template: str, template_no_opinion: str, fill, **kwargs) -> Example:
    """One randomised example. `template`/`template_no_opinion` are the prompt texts with
    {placeholders}; `fill(template, values)` fills them (generation.methods.prompting.fill)."""
    fields = example_fields(**kwargs)
    return Example(
        prompt=fill(template, fields).strip(),
        prompt_no_opinion=fill(template_no_opinion, fields).strip(),
        target=fields["target"],
        fields=fields,
    )


def answer_parse(completion: str) -> str:
    """ "(A)" or "(B)": the one choice letter the answer names. None, or both: ParseError."""
    letters = set(re.findall(r"\(\s*([AB])\s*\)", completion))
    if not letters:
        bare = re.match(r"\s*([AB])\b", completion)
        letters = {bare.group(1)} if bare else set()
    if len(letters) != 1:
        raise ParseError('Expected exactly one of "(A)" or "(B)".', raw=completion)
    return f"({letters.pop()})"


def sft_row(example: Example) -> dict:
    """Prompt-completion row: the completion is the target letter, as in the paper's data."""
    return {"prompt": example.prompt, "completion": f" {example.target}"}
