"""Agreement and ranking statistics against examples worked out by hand (the arithmetic is in the
comments) or published worked examples."""

import math

import pytest

from annotation import metrics


# --- Krippendorff's alpha, ordinal -------------------------------------------------------------
# Units (1,1), (1,2), (2,3), (3,3). Coincidences (each pair of a 2-value unit counts once per order):
# o11=2, o12=o21=1, o23=o32=1, o33=2, so n1=3, n2=2, n3=3, n=8.
# Ordinal distance d(c,k) = (sum_{g=c..k} n_g - (n_c+n_k)/2)^2: d12 = (5-2.5)^2 = 6.25,
# d23 = (5-2.5)^2 = 6.25, d13 = (8-3)^2 = 25.
# sum o*d = 2*(1*6.25 + 1*6.25) = 25; sum n_c*n_k*d = 2*(3*2*6.25 + 3*3*25 + 2*3*6.25) = 600.
# alpha = 1 - (n-1) * 25 / 600 = 1 - 175/600 = 17/24.
def test_alpha_ordinal_matches_hand_computation():
    assert metrics.krippendorff_alpha_ordinal([[1, 1], [1, 2], [2, 3], [3, 3]]) == pytest.approx(17 / 24)


def test_alpha_ignores_missing_values_and_unpairable_units():
    # A lone rating is not pairable; None is a missing rating (an annotator who did not see the task).
    units = [[1, 1, None], [None, 1, 2], [2, 3], [3, None, 3], [5], [None, 4]]
    assert metrics.krippendorff_alpha_ordinal(units) == pytest.approx(17 / 24)


def test_alpha_perfect_agreement_is_one():
    assert metrics.krippendorff_alpha_ordinal([[1, 1], [3, 3, 3], [5, 5]]) == pytest.approx(1.0)


def test_alpha_chance_level_and_systematic_disagreement():
    # (1,2),(2,1),(1,1),(2,2): o11=o22=2, o12=o21=2, n1=n2=4, n=8; d12=(8-4)^2=16.
    # sum o*d = 4*16 = 64; sum n n d = 2*4*4*16 = 512; alpha = 1 - 7*64/512 = 1/8 (near zero: the
    # (n-1) small-sample correction lifts pure chance slightly above 0).
    assert metrics.krippendorff_alpha_ordinal([[1, 2], [2, 1], [1, 1], [2, 2]]) == pytest.approx(1 / 8)
    # (1,5),(5,1): n1=n5=2, n=4, d15=(4-2)^2=4; sum o*d=16, sum n n d=32; alpha = 1 - 3*16/32 = -1/2.
    assert metrics.krippendorff_alpha_ordinal([[1, 5], [5, 1]]) == pytest.approx(-0.5)


def test_alpha_is_undefined_without_pairs_or_variation():
    assert metrics.krippendorff_alpha_ordinal([]) is None
    assert metrics.krippendorff_alpha_ordinal([[3], [4, None]]) is None
    assert metrics.krippendorff_alpha_ordinal([[3, 3], [3, 3]]) is None


# --- Fleiss' kappa -----------------------------------------------------------------------------
def _expand(counts_per_unit):
    return [[category for category, n in enumerate(row) for _ in range(n)] for row in counts_per_unit]


def test_fleiss_kappa_published_example():
    # Fleiss (1971) style worked example from Wikipedia "Fleiss' kappa": 10 subjects, 14 raters,
    # 5 categories; P_bar = 0.378, P_e = 0.213, kappa = 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert metrics.fleiss_kappa(_expand(table)) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_perfect_chance_and_missing():
    assert metrics.fleiss_kappa([["a", "a"], ["b", "b", "b"], ["tie", "tie"]]) == pytest.approx(1.0)
    # P_i = 1, 0, 0, 1 -> P_bar = 1/2; p_x = p_y = 1/2 -> P_e = 1/2; kappa = 0.
    assert metrics.fleiss_kappa([["x", "x"], ["x", "y"], ["y", "x"], ["y", "y"]]) == pytest.approx(0.0)
    # Missing ratings and single-rating units leave the same numbers.
    units = [["x", "x", None], [None, "x", "y"], ["y", "x"], ["y", "y"], ["x"], [None, "y"]]
    assert metrics.fleiss_kappa(units) == pytest.approx(0.0)
    assert metrics.fleiss_kappa([["x", "x"], ["x", "x"]]) is None
    assert metrics.fleiss_kappa([["x"]]) is None


# --- Cohen's kappa -----------------------------------------------------------------------------
def test_cohen_kappa_published_example():
    # Wikipedia "Cohen's kappa": 50 items; yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; p_e = (25*30 + 25*20) / 2500 = 0.5; kappa = 0.4.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert metrics.cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohen_kappa_perfect_chance_and_empty():
    assert metrics.cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert metrics.cohen_kappa(["x", "x", "y", "y"], ["x", "y", "x", "y"]) == pytest.approx(0.0)
    assert metrics.cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        metrics.cohen_kappa(["a"], ["a", "b"])


def test_cohen_kappa_for_each_annotator_pair_uses_shared_tasks_only():
    by_task = {
        1: {"ann": "x", "bea": "x", "cy": "y"},
        2: {"ann": "x", "bea": "y"},
        3: {"ann": "y", "bea": "x", "cy": "y"},
        4: {"ann": "y", "bea": "y"},
    }
    rows = {row["annotators"]: row for row in metrics.cohen_kappa_pairs(by_task)}
    assert rows[("ann", "bea")]["tasks"] == 4
    assert rows[("ann", "bea")]["kappa"] == pytest.approx(0.0)
    assert rows[("ann", "cy")]["tasks"] == 2
    # ann: x, y; cy: y, y -> p_o = 1/2, p_e = (1*2)/4 = 1/2 -> 0.
    assert rows[("ann", "cy")]["kappa"] == pytest.approx(0.0)
    # bea: x, x; cy: y, y -> p_o = 0, p_e = 0 -> 0.
    assert rows[("bea", "cy")]["kappa"] == pytest.approx(0.0)


# --- Span F1 -----------------------------------------------------------------------------------
def test_span_f1_exact_match_on_start_end_and_label():
    first = [{"start": 0, "end": 5, "label": "PER"}, {"start": 10, "end": 15, "label": "LOC"}]
    second = [
        {"start": 0, "end": 5, "label": "PER"},
        {"start": 10, "end": 15, "label": "ORG"},
        {"start": 20, "end": 25, "label": "LOC"},
    ]
    # One shared span of 2 + 3: F1 = 2*1/5.
    assert metrics.span_f1(first, second) == pytest.approx(0.4)
    assert metrics.span_f1(first, first) == pytest.approx(1.0)
    assert metrics.span_f1([], []) == pytest.approx(1.0)
    assert metrics.span_f1(first, []) == pytest.approx(0.0)
    # Three annotators: pairs (first, second) 0.4, (first, first) 1.0, (second, first) 0.4.
    assert metrics.span_f1_unit([first, second, first]) == pytest.approx(1.8 / 3)
    assert metrics.span_f1_unit([first, None]) is None
    assert metrics.span_f1_mean([[first, second], [first, first], [first]]) == pytest.approx(0.7)
    assert metrics.span_f1_mean([[first]]) is None


def test_unit_agreement_per_kind():
    assert metrics.unit_agreement(["a", "a", "b"], kind="categorical") == pytest.approx(1 / 3)
    # |1-5| = 4 -> 1 - 4/4 = 0; (2,3,3): diffs 1,1,0 -> 1 - (2/3)/4.
    assert metrics.unit_agreement([1, 5], kind="ordinal") == pytest.approx(0.0)
    assert metrics.unit_agreement([2, 3, 3], kind="ordinal") == pytest.approx(1 - 2 / 12)
    assert metrics.unit_agreement([3], kind="ordinal") is None


# --- Agreement with the majority ---------------------------------------------------------------
def test_majority_agreement_leaves_the_annotator_out_and_skips_ties():
    by_task = {
        1: {"x": 1, "y": 1, "z": 2},  # x: others (1,2) tie; y: tie; z: others 1,1 -> disagrees
        2: {"x": 1, "y": 1, "z": 1},  # everyone agrees with the others
        3: {"x": 2, "y": 1, "z": 1},  # x: others 1,1 -> disagrees; y, z: others tie
        4: {"x": 3},  # one annotation: no majority to compare with
    }
    result = metrics.majority_agreement(by_task)
    assert (result["x"]["agree"], result["x"]["tasks"]) == (1, 2)
    assert (result["y"]["agree"], result["y"]["tasks"]) == (1, 1)
    assert (result["z"]["agree"], result["z"]["tasks"]) == (1, 2)
    assert result["x"]["rate"] == pytest.approx(0.5)


def test_span_majority_agreement():
    per = {"start": 0, "end": 3, "label": "PER"}
    loc = {"start": 5, "end": 9, "label": "LOC"}
    by_task = {1: {"x": [per, loc], "y": [per, loc], "z": [per]}}
    result = metrics.span_majority_agreement(by_task)
    # x: others y={per,loc}, z={per}: majority (more than half of 2) = {per}; F1({per,loc},{per}) = 2/3.
    assert result["x"]["rate"] == pytest.approx(2 / 3)
    # z: others x, y both {per, loc}: F1({per}, {per, loc}) = 2/3.
    assert result["z"]["rate"] == pytest.approx(2 / 3)


# --- Win rates and Bradley–Terry ---------------------------------------------------------------
def test_win_rates_count_ties_as_half():
    rows = metrics.win_rates([("m1", "m2", "a"), ("m2", "m1", "a"), ("m1", "m2", "tie"), ("m1", "m1", "a")])
    assert rows["m1"] == {"wins": 1, "losses": 1, "ties": 1, "comparisons": 3, "win_rate": 0.5}


def test_bradley_terry_two_models_matches_closed_form():
    # With two models the MLE log-odds is log(wins/losses): m1 beat m2 3 times of 4, so m2 sits
    # 400*log10(1/3) = -190.85 Elo below the baseline m1 (most comparisons, then first by name).
    comparisons = [("m1", "m2", "a")] * 2 + [("m2", "m1", "b")] + [("m2", "m1", "a")]
    scores = metrics.bradley_terry(comparisons, bootstrap=200)
    assert scores["m1"]["baseline"] is True
    assert scores["m1"]["score"] == pytest.approx(1000.0)
    assert scores["m2"]["score"] == pytest.approx(1000 + 400 * math.log10(1 / 3), abs=0.01)
    # A tie is half a win each way: 2.5 vs 1.5 wins.
    tied = [("m1", "m2", "a")] * 2 + [("m1", "m2", "tie"), ("m1", "m2", "b")]
    scores = metrics.bradley_terry(tied, baseline="m2", bootstrap=0)
    assert scores["m2"]["score"] == pytest.approx(1000.0)
    assert scores["m1"]["score"] == pytest.approx(1000 + 400 * math.log10(2.5 / 1.5), abs=0.01)


def test_bradley_terry_three_models_satisfies_the_likelihood_equations():
    comparisons = (
        [("gpt", "llama", "a")] * 7
        + [("gpt", "llama", "b")] * 3
        + [("llama", "smol", "a")] * 6
        + [("llama", "smol", "b")] * 2
        + [("smol", "gpt", "a")] * 1
        + [("smol", "gpt", "b")] * 4
        + [("smol", "gpt", "tie")] * 2
    )
    scores = metrics.bradley_terry(comparisons, bootstrap=0)
    assert scores["gpt"]["score"] > scores["llama"]["score"] > scores["smol"]["score"]
    # At the MLE each model's expected wins equal its observed wins (ties half).
    theta = {m: (row["score"] - 1000) * math.log(10) / 400 for m, row in scores.items()}
    expected = dict.fromkeys(theta, 0.0)
    for a, b, _ in comparisons:
        p = 1 / (1 + math.exp(theta[b] - theta[a]))
        expected[a] += p
        expected[b] += 1 - p
    observed = {"gpt": 7 + 4 + 1, "llama": 3 + 6, "smol": 2 + 1 + 1}
    for model in observed:
        assert expected[model] == pytest.approx(observed[model], abs=1e-6)


def test_bradley_terry_bootstrap_interval_brackets_the_score_and_narrows_with_data():
    few = [("m1", "m2", "a")] * 6 + [("m1", "m2", "b")] * 4
    many = few * 20
    small = metrics.bradley_terry(few, baseline="m1", bootstrap=300, seed=1)
    large = metrics.bradley_terry(many, baseline="m1", bootstrap=300, seed=1)
    for result in (small, large):
        assert result["m2"]["ci_low"] <= result["m2"]["score"] <= result["m2"]["ci_high"]
        assert result["m1"]["ci_low"] == result["m1"]["ci_high"] == pytest.approx(1000.0)
    width = lambda r: r["m2"]["ci_high"] - r["m2"]["ci_low"]  # noqa: E731
    assert width(large) < width(small) / 2
    # Same seed, same interval.
    assert metrics.bradley_terry(few, baseline="m1", bootstrap=300, seed=1) == small


def test_bradley_terry_stays_finite_when_one_model_always_wins():
    scores = metrics.bradley_terry([("m1", "m2", "a")] * 5, baseline="m2", bootstrap=50)
    assert math.isfinite(scores["m1"]["score"]) and scores["m1"]["score"] > 1400
    assert metrics.bradley_terry([], bootstrap=10) == {}
    assert metrics.bradley_terry([("m1", "m1", "a")], bootstrap=10) == {}
