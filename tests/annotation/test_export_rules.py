"""Each export rule on its own, on plain records (no database)."""

import random

import pytest

from annotation.exports import rules as R


def record(*cands, tasks=(), **fields):
    return R.ItemRecord(1, candidates={c.id: c for c in cands}, tasks=list(tasks), **fields)


A = R.Cand(1, "Paris is the capital of France.", model="model-a", recipe="candidates")
B = R.Cand(2, "Lyon.", model="model-b", recipe="candidates")
C = R.Cand(3, "Marseille, probably.", model="model-b", recipe="candidates")


def compare(votes, a=1, b=2, **kw):
    return R.Task(10, "compare", a, b, votes=votes, **kw)


def rate(cand_id, ratings, task_id=None, **kw):
    return R.Task(task_id or 20 + cand_id, "rate", cand_id, ratings=list(ratings), **kw)


# Compare ---------------------------------------------------------------------------------------------


def test_two_of_three_prefer_a_so_a_is_chosen():
    pair = R.compare_pair(record(A, B), compare({"a": 2, "b": 1}))
    assert pair.rule == R.COMPARE_MAJORITY
    assert (pair.chosen, pair.rejected) == (A, B)
    assert pair.detail["votes"] == {"a": 2, "b": 1} and pair.detail["margin"] == 1


def test_b_majority_chooses_candidate_b_as_shown():
    pair = R.compare_pair(record(A, B), compare({"b": 3}))
    assert (pair.chosen, pair.rejected) == (B, A)


@pytest.mark.parametrize(
    ("votes", "reason"),
    [
        ({"tie": 2, "a": 1}, "tie"),
        ({"both_bad": 3}, "both_bad"),
        ({"a": 1, "b": 1, "tie": 1}, "no_majority"),
        ({"a": 1, "b": 1}, "no_majority"),
        ({}, "no_votes"),
    ],
)
def test_ties_both_bad_and_split_votes_make_no_pair(votes, reason):
    assert R.compare_pair(record(A, B), compare(votes)) == reason


def test_minimum_vote_margin():
    task = compare({"a": 3, "b": 2})
    assert R.compare_pair(record(A, B), task, min_margin=2) == "margin_below_min"
    assert R.compare_pair(record(A, B), compare({"a": 4, "b": 1}), min_margin=2).chosen == A


def test_an_adjudicated_choice_overrides_the_votes():
    pair = R.compare_pair(record(A, B), compare({"a": 2, "b": 1}, adjudicated={"choice": "b"}))
    assert pair.chosen == B and pair.detail["adjudicated"] is True


def test_tasks_with_the_same_votes_get_the_same_outcome_each_by_its_own_margin_and_ruling():
    """compare_majority decides each distinct set of votes once; a margin or an adjudication still
    decides for itself."""
    first, second = compare({"a": 3, "b": 2}), compare({"a": 3, "b": 2})
    assert R.compare_majority(first).winner == R.compare_majority(second).winner == "a"
    assert R.compare_majority(compare({"a": 3, "b": 2}), min_margin=2).reason == "margin_below_min"
    assert R.compare_majority(first).reason is None  # the first answer, not the margin-2 one
    ruled = R.compare_majority(compare({"a": 3, "b": 2}, adjudicated={"choice": "both_bad"}))
    assert (ruled.winner, ruled.reason) == ("both_bad", "both_bad")
    assert R.compare_majority(compare({"b": 3, "a": 2})).winner == "b"
    with pytest.raises(AttributeError):
        R.compare_majority(first).winner = "b"  # shared: it cannot be changed


# Ratings ---------------------------------------------------------------------------------------------


def test_best_vs_worst_with_minimum_gap():
    rec = record(A, B, C, tasks=[rate(1, [5, 4, 5]), rate(2, [1, 2, 1]), rate(3, [3, 3, 4])])
    ratings = R.candidate_ratings(rec)
    pair = R.rating_pair_best_worst(rec, ratings, min_gap=1)
    assert pair.rule == R.RATING_BEST_WORST and (pair.chosen, pair.rejected) == (A, B)
    assert pair.detail["ratings"] == {"chosen": [5, 4, 5], "rejected": [1, 2, 1]}
    assert R.rating_pair_best_worst(rec, ratings, min_gap=3.5) == "rating_gap_below_min"


def test_best_vs_worst_is_first_and_last_of_the_ranking():
    # The one-pass search ranks as _ranked does: highest mean first, then more ratings, then the older
    # candidate; the worst is the last of that order. Many rating sets, ties included.
    rng = random.Random(7)
    for _ in range(500):
        ratings = {cid: [rng.randint(1, 5) for _ in range(rng.randint(0, 3))] for cid in range(1, 5)}
        rec = R.ItemRecord(1, candidates={cid: R.Cand(cid, f"text {cid}") for cid in ratings})
        order = R._ranked(R.mean_ratings(ratings), ratings)
        pair = R.rating_pair_best_worst(rec, ratings, min_gap=0.5)
        if len(order) < 2:
            assert pair == "fewer_than_two_rated"
            continue
        means = R.mean_ratings(ratings)
        gap = means[order[0]] - means[order[-1]]
        if gap < 0.5:
            assert pair == "rating_gap_below_min"
        else:
            assert (pair.chosen.id, pair.rejected.id) == (order[0], order[-1])
            assert pair.detail["gap"] == round(gap, 4)
    # The order itself, on equal means: more ratings first, then the older (lower id) candidate.
    cands = {cid: R.Cand(cid, f"text {cid}") for cid in (1, 2, 3, 4)}
    rec = R.ItemRecord(1, candidates=cands)
    pair = R.rating_pair_best_worst(rec, {2: [4, 4], 1: [4], 3: [2], 4: [2, 2]}, min_gap=1)
    assert (pair.chosen.id, pair.rejected.id) == (2, 3)
    pair = R.rating_pair_best_worst(rec, {3: [5], 2: [5], 4: [1], 1: [1]}, min_gap=1)
    assert (pair.chosen.id, pair.rejected.id) == (2, 4)


def test_equal_ratings_never_make_a_pair():
    rec = record(A, B, tasks=[rate(1, [4]), rate(2, [4])])
    assert R.rating_pair_best_worst(rec, R.candidate_ratings(rec), min_gap=0) == "rating_gap_below_min"
    assert R.rating_pair_best_worst(record(A, tasks=[rate(1, [5])]), {1: [5]}) == "fewer_than_two_rated"


def test_best_vs_random_lower_draws_only_among_candidates_far_enough_below():
    rec = record(A, B, C, tasks=[rate(1, [5]), rate(2, [1]), rate(3, [4])])
    ratings = R.candidate_ratings(rec)
    rejected = {
        R.rating_pair_best_random(rec, ratings, min_gap=1, rng=random.Random(s)).rejected.id
        for s in range(40)
    }
    assert rejected == {2, 3}
    assert {
        R.rating_pair_best_random(rec, ratings, min_gap=2, rng=random.Random(s)).rejected.id
        for s in range(20)
    } == {2}
    # The same seed and item give the same pick, whatever else is exported.
    first = R.rating_pair_best_random(rec, ratings, min_gap=1, rng=R.item_rng(7, 1)).rejected
    again = R.rating_pair_best_random(rec, ratings, min_gap=1, rng=R.item_rng(7, 1)).rejected
    assert first == again


def test_an_adjudicated_rating_replaces_the_annotators_ratings():
    rec = record(A, tasks=[rate(1, [1, 1, 2], adjudicated={"rating": 5})])
    assert R.candidate_ratings(rec) == {1: [5]}


# Edits and SFT picks ----------------------------------------------------------------------------------


def edit_task(draft, *results):
    return R.Task(30, "edit", draft.id, judgments=[R.Judgment({"text": r.text}, r.id) for r in results])


def test_edit_pair_chooses_the_human_edit_over_its_draft():
    human = R.Cand(4, "Paris.", source="human", parent_id=2)
    rec = record(A, B, human, tasks=[edit_task(B, human)])
    (pair,) = R.edit_pairs(rec, R.edits(rec))
    assert pair.rule == R.EDIT_VS_DRAFT and (pair.chosen, pair.rejected) == (human, B)


def test_an_edit_that_only_changes_case_and_spacing_is_an_acceptance():
    same = R.Cand(4, "  lyon. ", source="human", parent_id=2)
    rec = record(B, same, tasks=[edit_task(B, same)])
    (edit,) = R.edits(rec)
    assert not edit.changed and edit.result == B
    assert R.edit_pairs(rec, R.edits(rec)) == []
    pick = R.sft_pick(rec, R.edits(rec), {})
    assert pick.rule == R.ACCEPTED_DRAFT and pick.cand == B


def test_sft_prefers_human_edits_then_accepted_drafts_then_the_best_rated():
    human = R.Cand(4, "Paris.", source="human", parent_id=2)
    rec = record(A, B, human, tasks=[rate(1, [5, 5]), rate(2, [1]), edit_task(B, human)])
    assert R.sft_pick(rec, R.edits(rec), R.candidate_ratings(rec)).cand == human
    rated = record(A, B, tasks=[rate(1, [5, 4]), rate(2, [2])])
    pick = R.sft_pick(rated, [], R.candidate_ratings(rated))
    assert pick.rule == R.BEST_RATED and pick.cand == A
    assert R.sft_pick(rated, [], R.candidate_ratings(rated), min_rating=4.75) == "rating_below_min"
    assert R.sft_pick(record(A), [], {}) == "not_reviewed"


def test_of_several_edits_sft_takes_the_best_rated_one():
    first = R.Cand(4, "Paris.", source="human", parent_id=2)
    second = R.Cand(5, "Paris is the capital.", source="human", parent_id=2)
    rec = record(B, first, second, tasks=[edit_task(B, first, second), rate(4, [2]), rate(5, [5])])
    assert R.sft_pick(rec, R.edits(rec), R.candidate_ratings(rec)).cand == second


# KTO -----------------------------------------------------------------------------------------------


def test_kto_labels_from_ratings_edits_and_both_bad():
    human = R.Cand(4, "Paris.", source="human", parent_id=3)
    rec = record(
        A,
        B,
        C,
        human,
        tasks=[
            rate(1, [5, 4]),
            rate(2, [1, 2]),
            rate(3, [3]),
            compare({"both_bad": 2}, a=2, b=3),
            edit_task(C, human),
        ],
    )
    picks, dropped = R.kto_picks(rec, R.edits(rec), R.candidate_ratings(rec))
    labels = {p.cand.id: (p.label, p.rule) for p in picks}
    assert labels == {
        1: (True, R.RATING_DESIRABLE),
        2: (False, R.RATING_UNDESIRABLE),
        3: (False, R.BOTH_BAD),
        4: (True, R.ACCEPTED_EDIT),
    }
    assert not dropped


def test_kto_drops_a_candidate_that_earns_both_labels():
    rec = record(A, B, tasks=[rate(1, [5, 5]), compare({"both_bad": 3})])
    picks, dropped = R.kto_picks(rec, [], R.candidate_ratings(rec))
    assert [p.cand.id for p in picks] == [2] and dropped["conflicting_labels"] == 1


def test_kto_weights_bring_the_ratio_into_trls_range():
    assert R.kto_weights(10, 10) == {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    assert R.kto_weights(40, 10)["desirable_weight"] == 0.25
    assert R.kto_weights(5, 10)["desirable_weight"] == 2.0


# Labels, spans, CoNLL --------------------------------------------------------------------------------


def label_task(*values, adjudicated=None):
    return R.Task(40, "label", judgments=[R.Judgment(v) for v in values], adjudicated=adjudicated)


def test_label_majority_and_its_share():
    task = label_task({"labels": ["positive"]}, {"labels": ["positive"]}, {"labels": ["negative"]})
    assert R.label_majority(task) == (["positive"], pytest.approx(2 / 3), None)
    split = label_task({"labels": ["positive"]}, {"labels": ["negative"]})
    assert R.label_majority(split)[2] == "no_label_majority"
    assert R.label_majority(label_task({"labels": ["negative"]}, adjudicated={"labels": ["positive"]}))[
        0
    ] == ["positive"]


def test_span_majority_keeps_spans_most_annotators_marked():
    alice, paris, visited = (
        {"start": 0, "end": 5, "label": "PER"},
        {"start": 14, "end": 19, "label": "LOC"},
        {
            "start": 6,
            "end": 13,
            "label": "LOC",
        },
    )
    task = label_task({"spans": [alice, paris]}, {"spans": [alice, paris, visited]}, {"spans": [alice]})
    spans, agreement, reason = R.span_majority(task)
    assert reason is None
    assert spans == [{"start": 0, "end": 5, "label": "PER"}, {"start": 14, "end": 19, "label": "LOC"}]
    assert agreement == pytest.approx((1 + 0.8 + 2 / 3) / 3)


def test_bio_tags_from_character_spans_with_whitespace_tokens():
    text = "Alice  visited New York\ttoday."
    tokens, tags, misaligned = R.bio_tags(
        text, [{"start": 0, "end": 5, "label": "PER"}, {"start": 15, "end": 23, "label": "LOC"}]
    )
    assert [t for _, _, t in tokens] == ["Alice", "visited", "New", "York", "today."]
    assert [(s, e) for s, e, _ in tokens] == [(0, 5), (7, 14), (15, 18), (19, 23), (24, 30)]
    assert tags == ["B-PER", "O", "B-LOC", "I-LOC", "O"]
    assert misaligned == 0
    _, tags, misaligned = R.bio_tags(text, [{"start": 2, "end": 5, "label": "PER"}])
    assert tags[0] == "B-PER" and misaligned == 1


# Agreement and prompts -------------------------------------------------------------------------------


def test_item_agreement_is_the_share_of_the_majority_and_the_rating_spread():
    rec = record(A, B, tasks=[compare({"a": 2, "b": 1}), rate(1, [5, 5]), rate(2, [1, 3])])
    ratings = R.candidate_ratings(rec)
    assert R.item_agreement(rec, ratings) == pytest.approx((2 / 3 + 1.0 + 0.5) / 3, abs=1e-4)
    assert R.item_agreement(record(A, tasks=[rate(1, [4])]), {1: [4]}) == 1.0


def test_item_agreement_with_krippendorffs_alpha():
    rec = record(A, B, tasks=[rate(1, [5, 5, 4]), rate(2, [1, 1, 2])])
    alpha = R.item_agreement(rec, R.candidate_ratings(rec), rating_method="alpha")
    assert 0.5 < alpha <= 1.0
    assert R.item_agreement(rec, {1: [3, 3], 2: [3, 3]}, rating_method="alpha") == 1.0


def test_prompts_from_text_prompt_and_messages():
    assert R.prompt_text(R.ItemRecord(1, prompt="Translate:", text="Bonjour")) == "Translate:\n\nBonjour"
    assert R.alpaca_fields(R.ItemRecord(1, prompt="Translate:", text="Bonjour")) == ("Translate:", "Bonjour")
    assert R.alpaca_fields(R.ItemRecord(1, text="Hi")) == ("Hi", "")
    chat = R.ItemRecord(
        1,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "old answer"},
        ],
    )
    assert R.prompt_messages(chat) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert R.prompt_text(chat) == "system: Be brief.\n\nuser: Hi"
    assert R.prompt_messages(R.ItemRecord(1, text="Hi")) == [{"role": "user", "content": "Hi"}]


# Pair clean-up (rows._pairs_clean) -------------------------------------------------------------------


def test_pair_clean_up_drops_duplicates_identical_texts_and_contradictions():
    from collections import Counter
    from types import SimpleNamespace

    from annotation.exports.rows import _pairs_clean

    def pair(chosen, rejected, rule=R.COMPARE_MAJORITY):
        return R.Pair(rule, chosen, rejected, {})

    same_as_b = R.Cand(4, "  lyon. ", model="model-b")
    ctx = SimpleNamespace(dropped=Counter())
    assert _pairs_clean([pair(A, B)], ctx) == [pair(A, B)] and not ctx.dropped
    kept = _pairs_clean([pair(A, B), pair(A, B, R.RATING_BEST_WORST), pair(B, same_as_b), pair(A, C)], ctx)
    assert [(p.chosen, p.rejected, p.rule) for p in kept] == [
        (A, B, R.COMPARE_MAJORITY),
        (A, C, R.COMPARE_MAJORITY),
    ]
    assert ctx.dropped == {"duplicate_pair": 1, "identical_texts": 1}
    ctx = SimpleNamespace(dropped=Counter())
    assert _pairs_clean([pair(A, B), pair(B, A, R.RATING_BEST_WORST), pair(A, C)], ctx) == [pair(A, C)]
    assert ctx.dropped == {"contradicting_pairs": 2}
    ctx = SimpleNamespace(dropped=Counter())
    assert _pairs_clean([pair(B, same_as_b)], ctx) == [] and ctx.dropped == {"identical_texts": 1}
