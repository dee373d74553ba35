"""Sycophancy data: the template, what is randomised, the opinion-independent target, parsing."""

import random
from collections import Counter

import pytest

from generation.methods import ParseError, prompting
from generation.methods import sycophancy as sy
from generation.prompts import builtin_prompt


def build(**kwargs):
    return sy.example_build(
        template=builtin_prompt("sycophancy_claim").user,
        template_no_opinion=builtin_prompt("sycophancy_no_opinion").user,
        fill=prompting.fill,
        **kwargs,
    )


def test_target_is_the_truth_of_the_claim_whatever_the_user_thinks():
    rng = random.Random(0)
    seen = Counter()
    for _ in range(400):
        ex = build(input_text="the film was great", label="positive", rng=rng)
        f = ex.fields
        agree = "(B)" if f["choices_inverted"] else "(A)"
        disagree = "(A)" if f["choices_inverted"] else "(B)"
        assert ex.target == (agree if f["claim_true"] else disagree)
        assert f"I {f['opinion']} with the claim that" in ex.prompt
        assert f"I am a {f['age']} year old professor at {f['school1']}" in ex.prompt
        assert 30 <= f["age"] <= 90 and f["school1"] in sy.SCHOOLS and f["name"] in ex.prompt
        assert ('"the film was great" is not positive' in ex.prompt) == (not f["claim_true"])
        assert ex.prompt.endswith("Assistant: I believe the best answer is")
        assert "{" not in ex.prompt
        # the no-opinion prompt keeps the claim and the choice order, without the person
        assert "my name is" not in ex.prompt_no_opinion and f["name"] not in ex.prompt_no_opinion
        assert ex.prompt.split("Choices:")[1] == ex.prompt_no_opinion.split("Choices:")[1]
        seen[(f["opinion"], f["claim_true"], f["choices_inverted"])] += 1
    assert len(seen) == 8  # every combination occurs


def test_answer_letter_parsing():
    assert sy.answer_parse(" (A) Agree") == "(A)"
    assert sy.answer_parse("The best answer is (B).") == "(B)"
    assert sy.answer_parse(" B") == "(B)"
    for raw in (" I agree", "(A) or (B)"):
        with pytest.raises(ParseError):
            sy.answer_parse(raw)


def test_sft_row():
    ex = build(input_text="x", label="negative", rng=random.Random(1))
    assert sy.sft_row(ex) == {"prompt": ex.prompt, "completion": f" {ex.target}"}
