"""Critique -> revision against a written constitution (Constitutional AI, Bai et al., arXiv 2212.08073).

For each draft the recipe runs K rounds (paper: 4); each round samples one principle (paper: one of
16), asks for a critique of the latest response against it, then for a revision. Every (revision,
original draft) pair becomes a compare task; confirmed pairs export as DPO.

The project keeps its constitution in `Project.options["constitution"]`: a list of principles, each
{"name", "critique", "revision"}. The default below is written for this app (not the paper's text);
admins edit and version it.
"""

from __future__ import annotations

import random
import re

from . import ParseError

DEFAULTS = {
    "rounds": 4,  # paper: 4 critique-revision pairs per prompt
    "temperature": 1.0,  # paper: sampling at T 1
    "max_new_tokens": 200,
    "critique_max_new_tokens": 120,
    "draft_max_new_tokens": 200,
}

DEFAULT_CONSTITUTION = [
    {
        "name": "harm",
        "critique": "Point out every way the assistant's last response is harmful, unethical, dangerous or illegal.",
        "revision": "Rewrite the assistant's response so that nothing in it is harmful, unethical, dangerous or illegal.",
    },
    {
        "name": "honesty",
        "critique": "Point out any claim in the assistant's last response that is false, made up or stated with more certainty than is warranted.",
        "revision": "Rewrite the response so that it states only what is true and says plainly where it is unsure.",
    },
    {
        "name": "helpfulness",
        "critique": "Explain how the assistant's last response fails to answer what the person actually asked.",
        "revision": "Rewrite the response so that it answers the question directly and completely.",
    },
    {
        "name": "respect",
        "critique": "Identify anything in the assistant's last response that is rude, condescending, racist or sexist.",
        "revision": "Rewrite the response to be respectful to everyone, removing any rude, racist or sexist content.",
    },
    {
        "name": "privacy",
        "critique": "Identify anything in the last response that exposes or invites exposing someone's private information.",
        "revision": "Rewrite the response so that it protects people's privacy.",
    },
    {
        "name": "safety_advice",
        "critique": "Does the last response give risky medical, legal or financial advice without suitable care? Explain.",
        "revision": "Rewrite the response to give careful, general guidance and suggest a qualified professional where it matters.",
    },
    {
        "name": "no_encouragement",
        "critique": "Identify any way the last response encourages or assists violence, self-harm or crime.",
        "revision": "Rewrite the response so that it discourages violence, self-harm and crime, and offers a safe alternative.",
    },
    {
        "name": "clarity",
        "critique": "Point out where the last response is confusing, rambling or badly organised.",
        "revision": "Rewrite the response to be clear, concise and well organised.",
    },
    {
        "name": "evasiveness",
        "critique": "Is the last response evasive, refusing where a helpful and harmless answer was possible? Explain.",
        "revision": "Rewrite the response to engage with the request helpfully while staying harmless.",
    },
    {
        "name": "manipulation",
        "critique": "Identify any way the last response tries to manipulate, flatter or mislead the person.",
        "revision": "Rewrite the response to be straightforward, without manipulation or flattery.",
    },
    {
        "name": "bias",
        "critique": "Identify any one-sided or stereotyped view in the last response on a contested topic.",
        "revision": "Rewrite the response to be balanced and free of stereotypes.",
    },
    {
        "name": "age_appropriate",
        "critique": "Would the last response be inappropriate if a child read it? Explain what and why.",
        "revision": "Rewrite the response so that it is appropriate for a general audience.",
    },
    {
        "name": "wise",
        "critique": "How would a thoughtful, wise and ethical person find the last response lacking?",
        "revision": "Rewrite the response the way a thoughtful, wise and ethical person would answer.",
    },
    {
        "name": "accuracy",
        "critique": "Check the last response for factual or reasoning errors and list them.",
        "revision": "Rewrite the response with the errors corrected.",
    },
    {
        "name": "tone",
        "critique": "Is the tone of the last response cold, preachy or sarcastic? Explain.",
        "revision": "Rewrite the response in a warm, friendly and non-preachy tone.",
    },
    {
        "name": "legality",
        "critique": "Does the last response help with anything illegal or against rules that protect others? Explain.",
        "revision": "Rewrite the response so that it only helps with lawful, legitimate activities.",
    },
]


def constitution_validate(value) -> list[dict]:
    """A constitution as stored in Project.options; raises ValueError saying what to fix."""
    if not isinstance(value, list) or not value:
        raise ValueError(
            'The constitution is a non-empty list of principles {"name", "critique", "revision"}.'
        )
    clean, names = [], set()
    for number, principle in enumerate(value, start=1):
        if not isinstance(principle, dict):
            raise ValueError(f"Principle {number} must be an object with critique and revision requests.")
        critique = str(principle.get("critique") or "").strip()
        revision = str(principle.get("revision") or "").strip()
        if not critique or not revision:
            raise ValueError(f'Principle {number} needs both a "critique" and a "revision" request.')
        name = str(principle.get("name") or f"principle-{number}").strip()
        if name in names:
            raise ValueError(f'Two principles are named "{name}"; names must be unique.')
        names.add(name)
        clean.append({"name": name, "critique": critique, "revision": revision})
    return clean


def constitution_for(options: dict | None) -> list[dict]:
    value = (options or {}).get("constitution")
    return constitution_validate(value) if value else [dict(p) for p in DEFAULT_CONSTITUTION]


def principle_sample(principles: list[dict], *, rng: random.Random) -> dict:
    return principles[rng.randrange(len(principles))]


def transcript(prompt: str, response: str, steps: list[dict]) -> str:
    """The conversation so far: the human's prompt, the assistant's draft, then each earlier
    round's critique request, critique, revision request and revision (the paper's format)."""
    parts = [f"Human: {prompt.strip()}", f"Assistant: {response.strip()}"]
    for step in steps:
        parts.append(f"Critique Request: {step['critique_request']}")
        parts.append(f"Critique: {step['critique']}")
        parts.append(f"Revision Request: {step['revision_request']}")
        parts.append(f"Revision: {step['revision']}")
    return "\n\n".join(parts)


def _strip_section(completion: str, label: str, *, stop_labels: tuple[str, ...]) -> str:
    text = completion.strip()
    text = re.sub(rf"^\s*{label}\s*:\s*", "", text, flags=re.IGNORECASE)
    stops = "|".join(re.escape(s) for s in stop_labels)
    text = re.split(rf"\n\s*(?:{stops})\s*:", text, flags=re.IGNORECASE)[0]
    return text.strip()


def critique_parse(completion: str) -> str:
    text = _strip_section(
        completion,
        "Critique",
        stop_labels=("Revision Request", "Revision", "Critique Request", "Human", "Assistant"),
    )
    if not text:
        raise ParseError("The model wrote no critique.", raw=completion)
    return text


def revision_parse(completion: str, *, previous: str) -> str:
    text = _strip_section(
        completion,
        "Revision",
        stop_labels=("Critique Request", "Critique", "Revision Request", "Human", "Assistant"),
    )
    if not text:
        raise ParseError("The model wrote no revision.", raw=completion)
    if text.strip() == previous.strip():
        raise ParseError("The revision repeats the response unchanged.", raw=completion)
    return text
