"""Distilling step by step: rationale + answer parsing, gold contradiction, export records."""

import random

import pytest

from generation.methods import ParseError
from generation.methods import rationale as ra


def test_rationale_and_label_are_split_at_the_last_marker():
    out = ra.rationale_parse(
        "The verse speaks of joy and light. So the answer is positive.", labels=["positive", "negative"]
    )
    assert out == {"rationale": "The verse speaks of joy and light.", "answer": "positive"}


def test_answers_outside_the_labels_or_without_rationale_are_parse_errors():
    with pytest.raises(ParseError, match="not one of"):
        ra.rationale_parse("Because. So the answer is joyful.", labels=["positive", "negative"])
    with pytest.raises(ParseError, match="no rationale"):
        ra.rationale_parse("So the answer is positive.")
    with pytest.raises(ParseError, match="So the answer is"):
        ra.rationale_parse("positive")


def test_contradicting_gold():
    assert ra.contradicts_gold("positive", "negative")
    assert not ra.contradicts_gold("positive", "Positive")
    assert not ra.contradicts_gold("positive", None)
    assert not ra.contradicts_gold("positive", ["positive"])


def test_exemplars_and_records():
    text = ra.exemplars(
        [{"input": "I love it", "rationale": "Love is positive.", "label": "positive"}], rng=random.Random(0)
    )
    assert text == "Input: I love it\nAnswer: Love is positive. So the answer is positive."
    assert ra.record(input_text="x", label="y", rationale="z", include_rationale=False) == {
        "input": "x",
        "label": "y",
    }
    rows = ra.multitask_rows(input_text="x", label="y", rationale="z")
    assert rows[0]["prompt"] == "predict: x" and rows[1]["prompt"] == "explain: x"
