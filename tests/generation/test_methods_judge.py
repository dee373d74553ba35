"""LLM-as-judge: rating and verdict parsing, the both-orders rule, agreement with humans."""

import pytest

from generation.methods import ParseError
from generation.methods import judge as jd


def test_rating_parsing():
    assert jd.rating_parse("Good answer. Rating: [[4]]") == 4
    assert jd.rating_parse("Rating: [5]") == 5
    for raw in ("Rating: 4", "Rating: [[7]]", "Rating: [[3.5]]"):
        with pytest.raises(ParseError):
            jd.rating_parse(raw)


def test_verdict_parsing():
    assert jd.verdict_parse("A is clearer. [[A]]") == "A"
    assert jd.verdict_parse("[[C]]") == "tie"
    with pytest.raises(ParseError, match="No verdict"):
        jd.verdict_parse("A is better")
    with pytest.raises(ParseError, match="More than one"):
        jd.verdict_parse("[[A]] or maybe [[B]]")


@pytest.mark.parametrize(
    ("first", "swapped", "result"),
    [
        ("A", "B", "a"),  # x wins in both orders
        ("B", "A", "b"),  # y wins in both orders
        ("A", "A", "tie"),  # position bias: always the first answer
        ("A", "tie", "tie"),
        ("tie", "tie", "tie"),
    ],
)
def test_a_win_counts_only_when_both_orders_agree(first, swapped, result):
    assert jd.both_orders_combine(first, swapped) == result


def test_agreement_rate_and_kappa():
    pairs = [(5, 5), (4, 4), (2, 3), (1, 1)]
    res = jd.agreement(pairs)
    assert res["n"] == 4 and res["agreement"] == 0.75
    # chance agreement: 3 of 16 label combinations match -> p_e = 3/16
    assert res["kappa"] == pytest.approx((0.75 - 3 / 16) / (1 - 3 / 16))
    choices = jd.agreement([("a", "a"), ("b", "both_bad"), ("tie", "tie"), ("a", "b")])
    assert choices["agreement"] == 0.5 and choices["n_without_ties"] == 2
    assert choices["agreement_without_ties"] == 0.5
    assert jd.agreement([])["agreement"] is None


def test_swap_consistency():
    res = jd.swap_consistency([("A", "B"), ("A", "A"), ("tie", "tie")])
    assert res == {"n": 3, "consistent": 2, "rate": pytest.approx(2 / 3)}
