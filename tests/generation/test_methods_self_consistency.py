"""Self-consistency: answer extraction, normalisation, majority vote, agreement, routing."""

import pytest

from generation.methods import ParseError
from generation.methods import self_consistency as sc


def test_answer_after_the_marker():
    assert sc.answer_extract("Let me think. The answer is positive. Because it is happy.") == "positive"
    assert sc.answer_extract("the answer is: Negative\nmore") == "Negative"


def test_numeric_answers_take_the_first_number():
    assert (
        sc.answer_extract("He has 3 then 5. The answer is 1,024 apples and 7 pears.", numeric=True) == "1024"
    )
    assert sc.answer_extract("The answer is -3.5.", numeric=True) == "-3.5"


def test_missing_marker_is_a_parse_error():
    with pytest.raises(ParseError) as exc:
        sc.answer_extract("positive")
    assert exc.value.raw == "positive"
    assert sc.answer_extract("positive\nmore text", marker="") == "positive"


def test_normalise_maps_onto_the_label_set_or_nothing():
    labels = ["positive", "negative", "no_impact"]
    assert sc.answer_normalise(" Positive! ", labels=labels) == "positive"
    assert sc.answer_normalise("it is clearly negative", labels=labels) == "negative"
    assert sc.answer_normalise("positive or negative", labels=labels) is None
    assert sc.answer_normalise("joyful", labels=labels) is None
    assert sc.answer_normalise("  The  Cat. ") == "the cat"


def test_majority_vote_with_unparsed_samples_counting_against_agreement():
    vote = sc.majority_vote(["positive", "negative", "positive", None, "positive"])
    assert vote.answer == "positive" and vote.count == 3 and vote.total == 5
    assert vote.agreement == pytest.approx(0.6)
    assert vote.distribution == {"positive": 3, "negative": 1}


def test_ties_go_to_the_answer_seen_first_and_no_votes_mean_no_answer():
    assert sc.majority_vote(["b", "a", "a", "b"]).answer == "b"
    empty = sc.majority_vote([None, None])
    assert empty.answer is None and empty.agreement == 0.0


def test_routing_by_threshold_and_calibration():
    assert sc.route(0.8, threshold=0.8) == "auto_accept"
    assert sc.route(0.79, threshold=0.8) == "review"
    cal = sc.calibration([("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")])
    assert cal == {"n": 4, "matched": 3, "rate": 0.75}
    assert sc.calibration([])["rate"] is None
