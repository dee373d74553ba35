"""Constitution: validation, principle sampling, the critique/revision transcript and parsing."""

import random
from collections import Counter

import pytest

from generation.methods import ParseError
from generation.methods import constitution as ca


def test_default_constitution_has_sixteen_principles_and_four_rounds():
    assert len(ca.DEFAULT_CONSTITUTION) == 16
    assert ca.DEFAULTS["rounds"] == 4 and ca.DEFAULTS["temperature"] == 1.0
    assert ca.constitution_for({}) == ca.DEFAULT_CONSTITUTION


def test_project_constitution_is_validated_with_messages_that_say_what_to_fix():
    own = [{"name": "kind", "critique": "Is it unkind?", "revision": "Make it kind."}]
    assert ca.constitution_for({"constitution": own}) == own
    with pytest.raises(ValueError, match="non-empty list"):
        ca.constitution_validate("be nice")
    with pytest.raises(ValueError, match='Principle 1 needs both a "critique" and a "revision"'):
        ca.constitution_validate([{"name": "x", "critique": "Only half"}])
    with pytest.raises(ValueError, match="unique"):
        ca.constitution_validate(own + own)


def test_principles_are_sampled_uniformly_and_reproducibly():
    rng = random.Random(7)
    counts = Counter(ca.principle_sample(ca.DEFAULT_CONSTITUTION, rng=rng)["name"] for _ in range(1600))
    assert len(counts) == 16 and min(counts.values()) > 60
    again = random.Random(7)
    assert (
        ca.principle_sample(ca.DEFAULT_CONSTITUTION, rng=again)["name"]
        == ca.principle_sample(ca.DEFAULT_CONSTITUTION, rng=random.Random(7))["name"]
    )


def test_transcript_appends_each_round_in_the_papers_format():
    step = {
        "critique_request": "Is it rude?",
        "critique": "Yes.",
        "revision_request": "Fix it.",
        "revision": "Hi!",
    }
    text = ca.transcript("Say hi", "Go away.", [step])
    assert text == (
        "Human: Say hi\n\nAssistant: Go away.\n\nCritique Request: Is it rude?\n\nCritique: Yes.\n\n"
        "Revision Request: Fix it.\n\nRevision: Hi!"
    )


def test_critique_and_revision_parsing_stops_at_the_next_section():
    assert ca.critique_parse(" Critique: It is rude.\nRevision Request: x") == "It is rude."
    assert ca.revision_parse("Hello there, friend.\nCritique Request: more", previous="Go away.") == (
        "Hello there, friend."
    )
    with pytest.raises(ParseError):
        ca.critique_parse("Critique:   ")
    with pytest.raises(ParseError, match="unchanged"):
        ca.revision_parse("Go away.", previous="Go away.")
