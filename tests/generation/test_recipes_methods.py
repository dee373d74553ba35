"""The method recipes end to end through the real job runner (generation.services.job_run): items in,
candidates, failures, review tasks and provenance out.

The model is the in-memory locmem backend answering scripted outputs in turn, so each test knows
exactly what the "model" said and can check parsing, filters and routing; the real transformers path
runs in test_recipes_tiny_model.py and the slow real-model test."""

import json
from pathlib import Path

import pytest

from annotation.models import Candidate, Item, ItemStatus, Membership, ReviewTask, Role
from annotation.services.projects import project_create
from generation.models import JobFailure
from generation.seeds import seed_tasks_import
from generation.services import job_create, job_run
from synthlab.errors import ValidationFailed

SEEDS = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "fixtures" / "self_instruct_seed_tasks_sample.jsonl").open()
]


def scripted(project, responses):
    project.model_settings = {"backend": "locmem", "responses": responses}
    project.save(update_fields=["model_settings"])


def run(project, user, recipe, params=None, items=None):
    job = job_create(project=project, user=user, recipe=recipe, params=params or {}, items=items)
    return job_run(job_id=job.pk)


@pytest.fixture
def instruction_project(admin_user, annotator):
    project = project_create(
        user=admin_user,
        data={"name": "Instructions", "task_type": "instruction", "modes": ["rate", "compare", "edit"]},
    )
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    return project


# self_instruct ----------------------------------------------------------------------------------


def test_self_instruct_keeps_novel_instructions_and_keeps_rejections_with_reasons(
    instruction_project, admin_user
):
    project = instruction_project
    seed_tasks_import(project=project, rows=SEEDS)
    seed = Item.objects.get(project=project, external_id="seed_task_0")
    near_copy = SEEDS[1]["instruction"].replace("given pairs", "given word pairs")
    scripted(
        project,
        [
            # 1. the instruction list the model continues after "9."
            f" Give three tips for keeping houseplants alive in winter.\n10. {near_copy}\n11. Draw a map of your "
            "town and label it.\n12. Classify the sentiment of the movie review as positive or negative.",
            # 2. classification or not, for the two novel ones
            "No",
            "Yes",
            # 3. instances: input-first, then output-first
            " Not applicable.\nOutput: Water less often, give them light, keep them away from radiators.",
            " positive\nInput: A wonderful, moving film.\nClass label: negative\nInput: Two hours I will never get back.",
        ],
    )
    job = run(project, admin_user, "self_instruct", items={"ids": [seed.pk]})
    assert job.status == "succeeded", job.message

    accepted = Item.objects.filter(project=project, metadata__self_instruct__status="accepted").order_by("id")
    assert [i.prompt for i in accepted] == [
        "Give three tips for keeping houseplants alive in winter.",
        "Classify the sentiment of the movie review as positive or negative.\n\nInput: A wonderful, moving film.",
        "Classify the sentiment of the movie review as positive or negative.\n\nInput: Two hours I will never get back.",
    ]
    outputs = [c.text for c in Candidate.objects.filter(item__in=accepted).order_by("item_id")]
    assert outputs == [
        "Water less often, give them light, keep them away from radiators.",
        "positive",
        "negative",
    ]

    cand = Candidate.objects.filter(item=accepted[0]).get()
    assert len(cand.scores["nearest"]) == 10 and cand.scores["max_rouge_l"] <= 0.7
    assert cand.scores["nearest"][0]["rouge_l"] == cand.scores["max_rouge_l"]
    prov = cand.provenance
    assert prov["recipe"] == "self_instruct" and prov["params"]["rouge_threshold"] == 0.7
    assert {p["name"] for p in prov["prompts"]} == {
        "self_instruct_instructions",
        "self_instruct_is_classification",
        "self_instruct_instances_generation",
    }
    assert all(p["version"] == "1" for p in prov["prompts"])
    assert seed.prompt in prov["prompt_instructions"] and len(prov["prompt_instructions"]) == 8
    # reviewers get the kept instances
    assert ReviewTask.objects.filter(item__in=accepted, mode="rate").count() == 3

    rejected = {
        i.prompt: i.metadata["self_instruct"]
        for i in Item.objects.filter(project=project, metadata__self_instruct__status="rejected")
    }
    assert set(rejected) == {near_copy, "Draw a map of your town and label it."}
    assert rejected[near_copy]["reason"].startswith("too similar to an existing instruction (ROUGE-L")
    assert rejected[near_copy]["nearest"][0]["instruction"] == SEEDS[1]["instruction"]
    assert (
        rejected["Draw a map of your town and label it."]["reason"] == 'contains the blacklisted word "map"'
    )
    assert not ReviewTask.objects.filter(item__metadata__self_instruct__status="rejected").exists()
    assert set(
        Item.objects.filter(metadata__self_instruct__status="rejected").values_list("status", flat=True)
    ) == {ItemStatus.DONE}


def test_self_instruct_needs_enough_seed_tasks(instruction_project, admin_user):
    seed_tasks_import(project=instruction_project, rows=SEEDS[:3])
    with pytest.raises(ValidationFailed, match="needs at least 6 seed tasks"):
        job_create(project=instruction_project, user=admin_user, recipe="self_instruct", params={})


def test_unknown_or_mistyped_parameters_are_rejected(instruction_project, admin_user):
    seed_tasks_import(project=instruction_project, rows=SEEDS)
    with pytest.raises(ValidationFailed, match="Unknown parameter"):
        job_create(
            project=instruction_project, user=admin_user, recipe="self_instruct", params={"rouge": 0.5}
        )
    with pytest.raises(ValidationFailed, match="must be a number"):
        job_create(
            project=instruction_project,
            user=admin_user,
            recipe="self_instruct",
            params={"rouge_threshold": "high"},
        )


# backtranslation --------------------------------------------------------------------------------


def test_backtranslation_scores_pairs_and_routes_only_kept_ones_to_review(instruction_project, admin_user):
    project = instruction_project
    seed_tasks_import(project=project, rows=SEEDS)
    texts = Item.objects.bulk_create(
        [
            Item(
                project=project, text="Basic air cleaners filter some dust, dander and pollen from the air."
            ),
            Item(
                project=project,
                text="I hadn't been to Red Mountain in over 4 years and was happy to be back.",
            ),
            Item(project=project, text="Disney agreed to buy Lucasfilm for $4.05 billion in cash and stock."),
        ]
    )
    scripted(
        project,
        [
            "What do basic air cleaners remove from the air?",
            "Tell me about your trip to Red Mountain.",
            "Instruction: How much did Disney pay for Lucasfilm?",
            "Direct, complete and in an assistant voice.\nScore: 5",
            "It is a personal blog post.\nScore: 1",
            "I think this is fine.",  # no score line: a recorded failure
        ],
    )
    job = run(project, admin_user, "backtranslation", items={"ids": [t.pk for t in texts]})
    assert job.status == "succeeded"
    good = Candidate.objects.get(item=texts[0])
    assert good.text == "What do basic air cleaners remove from the air?"
    assert good.scores["curation_score"] == 5 and good.scores["kept"] is True
    assert good.scores["curation_reasoning"] == "Direct, complete and in an assistant voice."
    assert good.provenance["params"]["threshold"] == 5
    assert [p["name"] for p in good.provenance["prompts"]] == [
        "backtranslation_augment",
        "backtranslation_curate",
    ]
    blog = Candidate.objects.get(item=texts[1])
    assert blog.scores["kept"] is False and blog.scores["route"] == "rejected"
    assert ReviewTask.objects.filter(item=texts[0]).exists()
    assert not ReviewTask.objects.filter(item=texts[1]).exists()
    failure = JobFailure.objects.get(job=job, item=texts[2])
    assert failure.reason == "unparseable" and failure.raw_output == "I think this is fine."
    assert "Score" in failure.message


def test_backtranslation_straight_to_export(instruction_project, admin_user):
    project = instruction_project
    seed_tasks_import(project=project, rows=SEEDS)
    item = Item.objects.create(
        project=project, text="Basic air cleaners filter some dust and pollen from the air."
    )
    scripted(project, ["What do air cleaners do?", "Complete.\nScore: 5"])
    run(project, admin_user, "backtranslation", params={"route": "export"}, items={"ids": [item.pk]})
    cand = Candidate.objects.get(item=item)
    assert cand.scores["auto_accepted"] is True and cand.scores["route"] == "export"
    assert not ReviewTask.objects.filter(item=item).exists()


# self_consistency -------------------------------------------------------------------------------


def test_self_consistency_votes_and_auto_accepts_above_the_threshold(project, admin_user):
    a, b = Item.objects.bulk_create(
        [Item(project=project, text="I loved it"), Item(project=project, text="Meh")]
    )
    scripted(
        project,
        [
            "The answer is positive.",
            "The answer is Positive",
            "The answer is positive.",
            "The answer is positive.",
            "The answer is negative.",
            "The answer is negative.",
            "The answer is positive.",
            "no idea",
            "The answer is negative",
            "The answer is joy",
        ],
    )
    run(project, admin_user, "self_consistency", params={"samples": 5, "calibration_sample": 0.0})
    ca, cb = Candidate.objects.get(item=a), Candidate.objects.get(item=b)
    assert ca.label == "positive" and ca.scores["agreement"] == 0.8 and ca.scores["auto_accepted"] is True
    assert ca.scores["votes"] == {"positive": 4, "negative": 1}
    assert cb.label == "negative" and cb.scores["agreement"] == 0.4 and cb.scores["route"] == "review"
    assert cb.scores["parsed"] == 3  # "no idea" and "joy" are no votes
    assert len(cb.provenance["raw_samples"]) == 5
    assert not ReviewTask.objects.filter(item=a).exists()
    assert ReviewTask.objects.filter(item=b, mode="label", candidate_a=cb).exists()


# critique_revise --------------------------------------------------------------------------------


def test_critique_revise_makes_a_revision_to_compare_with_the_draft(instruction_project, admin_user):
    project = instruction_project
    item = Item.objects.create(project=project, prompt="How do I get back at my noisy neighbour?")
    scripted(
        project,
        [
            "Slash their tyres.",  # draft
            "Critique: It suggests a crime.",
            "Revision: Talk to them calmly, or contact your landlord.",
            "The revision is already respectful.",
            "Talk to them calmly about the noise, and if that fails contact your landlord or the council.",
        ],
    )
    job = run(project, admin_user, "critique_revise", params={"rounds": 2})
    assert job.status == "succeeded", job.message
    draft = Candidate.objects.get(item=item, dedupe_key="critique_revise:0")
    revision = Candidate.objects.get(item=item, dedupe_key="critique_revise:1")
    assert draft.text == "Slash their tyres."
    assert revision.text.startswith("Talk to them calmly about the noise")
    steps = revision.provenance["steps"]
    assert len(steps) == 2 and steps[0]["critique"] == "It suggests a crime."
    assert steps[0]["revision"] == "Talk to them calmly, or contact your landlord."
    assert all(s["principle"] in {p["name"] for p in revision.provenance["constitution"]} for s in steps)
    assert revision.provenance["original"] == {"sample": 0}
    task = ReviewTask.objects.get(item=item, mode="compare")
    assert {task.candidate_a_id, task.candidate_b_id} == {draft.pk, revision.pk}


# qa_from_document -------------------------------------------------------------------------------


def test_qa_pairs_from_chunks_with_filters(instruction_project, admin_user):
    project = instruction_project
    chunk = Item.objects.create(
        project=project,
        text="The pump runs on diesel and moves 40 litres a minute.",
        metadata={"document": {"id": "d1", "name": "Pump manual", "chunk": 0, "start": 0, "end": 52}},
    )
    other = Item.objects.create(
        project=project, text="Valves close automatically.", metadata={"document": {"id": "d1"}}
    )
    scripted(
        project,
        ["What fuel does the pump use? [[[Assistant]]] It runs on diesel.", "Valves. [[[Assistant]]] ok"],
    )
    run(project, admin_user, "qa_from_document")
    good = Candidate.objects.get(item=chunk)
    assert good.text == "Question: What fuel does the pump use?\nAnswer: It runs on diesel."
    assert good.scores["rejected"] is None and good.provenance["document"]["name"] == "Pump manual"
    bad = Candidate.objects.get(item=other)
    assert bad.scores["rejected"] == "question shorter than 10 characters" and bad.scores["skip_review"]
    assert (
        ReviewTask.objects.filter(item=chunk).exists() and not ReviewTask.objects.filter(item=other).exists()
    )


# rationale --------------------------------------------------------------------------------------


def test_rationale_label_and_text_and_gold_contradictions(project, admin_user):
    agree = Item.objects.create(project=project, text="A joyful verse", reference={"labels": ["positive"]})
    contra = Item.objects.create(project=project, text="A sad verse", reference={"labels": ["negative"]})
    scripted(
        project,
        ["Joy is a happy feeling. So the answer is positive.", "It sounds fine. So the answer is positive."],
    )
    run(project, admin_user, "rationale")
    c1, c2 = Candidate.objects.get(item=agree), Candidate.objects.get(item=contra)
    assert (c1.label, c1.text) == ("positive", "Joy is a happy feeling.")
    assert c2.scores["contradicts_gold"] is True and c2.scores["skip_review"] is True
    assert ReviewTask.objects.filter(item=agree, mode="label").exists()
    assert ReviewTask.objects.filter(item=agree, mode="edit").exists()
    assert not ReviewTask.objects.filter(item=contra).exists()


# sycophancy -------------------------------------------------------------------------------------


def test_sycophancy_keeps_only_examples_the_model_gets_right_without_the_opinion(project, admin_user):
    source = Item.objects.create(
        project=project, text="the film was great", reference={"labels": ["positive"]}
    )
    Item.objects.create(project=project, text="no label here")
    scripted(project, ["(A)", "(B)"])
    job = run(project, admin_user, "sycophancy", params={"examples_per_item": 2})
    assert job.status == "succeeded"
    made = list(
        Item.objects.filter(project=project, metadata__sycophancy__source_item=source.pk).order_by("id")
    )
    assert len(made) == 2
    for item in made:
        info = item.metadata["sycophancy"]
        kept = info["model_answer_without_opinion"] == info["target"]
        assert info["status"] == ("kept" if kept else "filtered")
        assert Candidate.objects.filter(item=item).exists() == kept
        assert "I believe the best answer is" in item.prompt and info["fields"]["name"] in item.prompt
    kept = [i for i in made if i.metadata["sycophancy"]["status"] == "kept"]
    for item in kept:
        cand = Candidate.objects.get(item=item)
        assert cand.text.strip() == item.metadata["sycophancy"]["target"] and cand.scores["auto_accepted"]
    assert not ReviewTask.objects.filter(item__in=made).exists()


# judge ------------------------------------------------------------------------------------------


def test_judge_ratings_are_stored_apart_from_human_annotations(instruction_project, admin_user):
    project = instruction_project
    item = Item.objects.create(project=project, prompt="Name a red fruit.")
    c = Candidate.objects.create(item=item, text="A strawberry.", source="model")
    scripted(project, ["Correct and short. Rating: [[5]]"])
    run(project, admin_user, "judge", params={"mode": "rate"})
    c.refresh_from_db()
    assert c.scores["judge"]["rating"] == 5 and c.scores["judge"]["annotator"] == "model-judge"
    from annotation.models import Annotation

    assert not Annotation.objects.exists()


def test_judge_compare_counts_a_win_only_when_both_orders_agree(instruction_project, admin_user):
    project = instruction_project
    item = Item.objects.create(project=project, prompt="Name a red fruit.")
    x = Candidate.objects.create(item=item, text="A strawberry.", source="model")
    y = Candidate.objects.create(item=item, text="A banana.", source="model")
    from annotation.services.tasks import review_tasks_sync

    review_tasks_sync(project=project, item_ids=[item.pk])
    task = ReviewTask.objects.get(item=item, mode="compare")
    scripted(project, ["[[A]]", "[[A]]"])  # position bias: always the first
    run(project, admin_user, "judge", params={"mode": "compare"})
    a = Candidate.objects.get(pk=task.candidate_a_id)
    verdict = a.scores["judge_compare"][task.key]
    assert verdict["choice"] == "tie" and verdict["first"] == "A" and verdict["swapped"] == "A"
    assert {x.pk, y.pk} == {task.candidate_a_id, task.candidate_b_id}
