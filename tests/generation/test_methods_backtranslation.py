"""Humpback self-curation parsing ("Score: n"), threshold, augmentation prompt, curator P/R."""

import random

import pytest

from generation.methods import ParseError
from generation.methods import backtranslation as bt


def test_score_and_reasoning_follow_distilabels_pattern():
    parsed = bt.curation_parse("This is the reason. Score: 1")
    assert parsed.score == 1 and parsed.reasoning == "This is the reason."


def test_multiline_reasoning_and_the_first_score_line_wins():
    parsed = bt.curation_parse("The answer is complete\nand in an assistant voice.\nScore: 5\nScore: 2")
    assert parsed.score == 5
    assert parsed.reasoning == "The answer is complete\nand in an assistant voice."


@pytest.mark.parametrize(
    "raw",
    ["Score: 4", "It is good. I give it 4/5.", "Reasoning. Score: 7", "Reasoning. Score: 0", ""],
)
def test_missing_or_out_of_scale_scores_are_parse_errors_never_guesses(raw):
    # "Score: 4" alone has no reasoning before it, which the pattern requires.
    with pytest.raises(ParseError) as exc:
        bt.curation_parse(raw)
    assert exc.value.raw == raw


def test_threshold_defaults_to_the_papers_five():
    assert bt.DEFAULTS["threshold"] == 5
    assert bt.is_kept(5) and not bt.is_kept(4) and not bt.is_kept(None)
    assert bt.is_kept(4, threshold=4)


def test_augmentation_examples_are_reversed_seed_pairs():
    pairs = [{"instruction": "Name a red fruit.", "output": "A strawberry."}]
    text = bt.augment_examples(pairs, rng=random.Random(0))
    assert text == "Response:\nA strawberry.\nInstruction: Name a red fruit."
    with pytest.raises(ValueError, match="seed"):
        bt.augment_examples([], rng=random.Random(0))


def test_instruction_parse_takes_the_first_line_and_strips_labels():
    assert bt.instruction_parse(" Instruction: How do air cleaners work?\nResponse:\nblah") == (
        "How do air cleaners work?"
    )
    with pytest.raises(ParseError):
        bt.instruction_parse("   \n\n")


def test_segment_length_filter():
    assert bt.segment_ok("short") == "shorter than 40 characters"
    assert bt.segment_ok("x" * 100) is None


def test_curator_precision_and_recall_against_a_dev_set():
    # 10 pairs: curator keeps 4, 3 of them good; 5 good in all.
    pairs = [(True, True)] * 3 + [(True, False)] + [(False, True)] * 2 + [(False, False)] * 4
    result = bt.precision_recall(pairs)
    assert result["precision"] == pytest.approx(0.75)
    assert result["recall"] == pytest.approx(0.6)
    assert result["n"] == 10 and result["positives"] == 5 and result["kept"] == 4
    assert bt.precision_recall([(False, False)])["precision"] is None
