"""Self-Instruct's deterministic parts: prompt, parsing, the paper's filters, ROUGE-L novelty."""

import json
import random
from pathlib import Path

import pytest

from generation.methods import ParseError, params_merge
from generation.methods import self_instruct as si

SEEDS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "fixtures" / "self_instruct_seed_tasks_sample.jsonl").open()
]


def test_prompt_holds_six_seed_and_two_machine_instructions_then_an_open_ninth():
    machine = ["Summarise the plot of a film in one sentence.", "Give three synonyms for the word given."]
    seeds = [t["instruction"] for t in SEEDS]
    chosen = si.prompt_instructions_sample(seeds, machine, rng=random.Random(1))
    assert len(chosen) == 8
    assert set(machine) <= set(chosen)
    assert len([c for c in chosen if c in seeds]) == 6
    text = si.numbered_list(chosen)
    lines = text.splitlines()
    assert lines[0].startswith("1. ") and lines[7].startswith("8. ") and lines[-1] == "9."


def test_with_an_empty_machine_pool_all_eight_come_from_the_seeds():
    seeds = [t["instruction"] for t in SEEDS]
    chosen = si.prompt_instructions_sample(seeds, [], rng=random.Random(0))
    assert len(chosen) == 8 and all(c in seeds for c in chosen)


def test_too_few_seeds_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 6 seed instructions"):
        si.prompt_instructions_sample(["a b c d"], ["x y z w", "p q r s"], rng=random.Random(0))


def test_continuation_splits_into_instructions_and_stops_at_a_blank_line():
    completion = " Translate the sentence into French.\n10. List three uses of a brick.\n\n11. ignored"
    assert si.instructions_parse(completion, first_number=9) == [
        "Translate the sentence into French.",
        "List three uses of a brick.",
    ]


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("Sort the list.", "too short (3 words; needs more than 3)"),
        ("word " * 151, "too long (151 words; at most 150)"),
        ("Describe the image shown above in detail.", 'contains the blacklisted word "image"'),
        ("Plot the data points on a chart please.", 'contains the blacklisted word "plot"'),
        ("Please go to the website and summarise it.", 'contains the blacklisted word "go to"'),
        ("Write a program that sorts numbers quickly.", 'starts with "Write a program"'),
        ("- Summarise the text in two sentences.", "starts with punctuation"),
        ("Éxplain the rules of chess to a child.", "starts with a non-ASCII character"),
        ("Summarise the following article in two sentences.", None),
        # a word containing a blacklisted word is fine: "mapping" is not "map"
        ("Explain the mapping between keys and values.", None),
    ],
)
def test_instruction_filters_give_the_papers_reasons(instruction, reason):
    assert si.instruction_filter(instruction) == reason


def test_rouge_novelty_rejects_above_point_seven_and_lists_the_ten_nearest():
    pool = [t["instruction"] for t in SEEDS]
    index = si.RougeIndex(pool)
    near_copy = pool[1].replace("given pairs", "given word pairs")
    result = index.check(near_copy)
    assert result.max_rouge_l > 0.7 and not result.is_novel
    assert result.nearest[0]["instruction"] == pool[1]
    assert len(result.nearest) == 10
    scores = [n["rouge_l"] for n in result.nearest]
    assert scores == sorted(scores, reverse=True)

    fresh = index.check("Compose a haiku about autumn leaves falling in a quiet park.")
    assert fresh.is_novel and fresh.max_rouge_l <= 0.7


def test_rouge_threshold_is_strictly_greater_than():
    index = si.RougeIndex(["a b c d e f g h i j"])
    # 7 of 10 tokens in common, same length: F1 = 0.7 exactly -> still novel
    result = index.check("a b c d e f g x y z", threshold=0.7)
    assert result.max_rouge_l == pytest.approx(0.7)
    assert result.is_novel
    assert not index.check("a b c d e f g x y z", threshold=0.69).is_novel


def test_is_classification_answer_parsing():
    assert si.is_classification_parse(" Yes") is True
    assert si.is_classification_parse("no, it generates text") is False
    with pytest.raises(ParseError) as exc:
        si.is_classification_parse("Maybe")
    assert exc.value.raw == "Maybe"


def test_classification_examples_come_from_seed_flags():
    text = si.is_classification_examples(SEEDS, rng=random.Random(3), n=6)
    assert text.count("Is it classification? Yes") == 3
    assert text.count("Is it classification? No") == 3


def test_output_first_instances_for_classification():
    completion = " Positive\nInput: I loved it.\n\nClass label: Negative\nInput: Dull and slow.\n\nTask: next"
    instances = si.instances_parse(completion, is_classification=True, prompt_tail="Class label:")
    assert instances == [
        {"input": "I loved it.", "output": "Positive"},
        {"input": "Dull and slow.", "output": "Negative"},
    ]


def test_input_first_instances_and_truncation_drops_the_last():
    completion = "Example 1\nInput: 2 + 2\nOutput: 4\nExample 2\nInput: 3 + 5\nOutput: 8\nExample 3\nInput: 9 + 1\nOutput: 1"
    assert si.instances_parse(completion, is_classification=False) == [
        {"input": "2 + 2", "output": "4"},
        {"input": "3 + 5", "output": "8"},
        {"input": "9 + 1", "output": "1"},
    ]
    assert len(si.instances_parse(completion, is_classification=False, truncated=True)) == 2


def test_unparseable_instances_are_a_parse_error_with_the_raw_text():
    with pytest.raises(ParseError) as exc:
        si.instances_parse("I don't know what to write.", is_classification=False)
    assert exc.value.raw == "I don't know what to write."


def test_instance_filters_keep_reasons():
    kept, rejected = si.instances_filter(
        [
            {"input": "x", "output": "x"},
            {"input": "a", "output": ""},
            {"input": "Name:", "output": "Bob"},
            {"input": "b", "output": "1"},
            {"input": "b", "output": "1"},
        ],
        rng=random.Random(0),
    )
    assert kept == [{"input": "b", "output": "1"}]
    assert [r["reason"] for r in rejected] == [
        "input equals output",
        "empty output",
        "input or output ends with a colon (cut off)",
        "duplicate",
    ]


def test_one_input_with_two_outputs_drops_all_of_the_tasks_instances():
    kept, rejected = si.instances_filter(
        [{"input": "q", "output": "1"}, {"input": "q", "output": "2"}, {"input": "r", "output": "3"}],
        rng=random.Random(0),
    )
    assert kept == []
    assert {r["reason"] for r in rejected} == {"one input maps to different outputs"}


def test_at_most_five_instances_per_task():
    kept, rejected = si.instances_filter(
        [{"input": str(n), "output": str(n + 100)} for n in range(8)], rng=random.Random(0)
    )
    assert len(kept) == 5 and len(rejected) == 3
    assert all(r["reason"] == "over 5 instances" for r in rejected)


def test_seed_tasks_validate_names_the_bad_row():
    assert len(si.seed_tasks_validate(SEEDS)) == len(SEEDS)
    with pytest.raises(ValueError, match="Seed task 2 needs an instruction"):
        si.seed_tasks_validate([SEEDS[0], {"instances": []}])


def test_params_merge_keeps_paper_defaults_and_rejects_unknown_keys():
    merged = params_merge(si.DEFAULTS, {"rouge_threshold": 0.6})
    assert merged["rouge_threshold"] == 0.6 and merged["num_prompt_instructions"] == 8
    assert merged["temperature"] == 0.7 and merged["top_p"] == 0.5 and merged["presence_penalty"] == 2.0
    with pytest.raises(ValueError, match="Unknown parameter"):
        params_merge(si.DEFAULTS, {"rouge_treshold": 0.6})
    with pytest.raises(ValueError, match="must be int"):
        params_merge(si.DEFAULTS, {"max_instances": "five"})


def test_a_repeated_open_number_is_not_part_of_the_instruction():
    assert si.instructions_parse(
        "9. Name a bird that cannot fly.\n10. Count the vowels in a word.", first_number=9
    ) == [
        "Name a bird that cannot fly.",
        "Count the vowels in a word.",
    ]
