"""The real default model (SmolLM2-135M-Instruct) through two method recipes, in-process through the
job runner (generation.services.job_run): backtranslation on 3 real C4 paragraphs and self-consistency
weak labels on 3 sentiment sentences. A 135M model often ignores the requested format, so each item
must end as what a user would see: a stored candidate with its parsed score/vote, or a recorded
failure that keeps the model's raw output. Kept short (small N, few tokens) for a 2-core machine."""

import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.models import Candidate, Item
from annotation.services.projects import project_create
from generation.models import JobFailure
from generation.seeds import seed_tasks_import
from generation.services import job_create, job_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

CACHE = Path(os.environ.get("SYNTHLAB_MODEL_CACHE") or Path.home() / ".cache" / "synthlab-models")
FIXTURES = Path(__file__).parents[1] / "fixtures"
PARAGRAPHS = [json.loads(line)["text"] for line in (FIXTURES / "c4_paragraphs_sample.jsonl").open()]
SEEDS = [json.loads(line) for line in (FIXTURES / "self_instruct_seed_tasks_sample.jsonl").open()]
SENTENCES = [
    "I loved this movie, it was wonderful and moving.",
    "Terrible film. Boring, too long and badly acted.",
    "Great service and delicious food, highly recommended!",
]


@pytest.fixture
def default_model(settings):
    settings.MODEL_CACHE_DIR = str(CACHE)
    call_command("fetch_model")  # converts the wheel's model once; later runs find the cache


def run(project, user, recipe, params, items):
    job = job_create(project=project, user=user, recipe=recipe, params=params, items={"ids": items})
    job = job_run(job_id=job.pk)
    assert job.status == "succeeded", job.message
    return job


def outcome(job, item):
    """(candidate, None) or (None, failure): every item ends as one or the other."""
    cand = Candidate.objects.filter(item=item, recipe=job.recipe).first()
    failure = JobFailure.objects.filter(job=job, item=item).first()
    assert (cand is None) != (failure is None), f"item {item.pk}: candidate {cand}, failure {failure}"
    return cand, failure


def test_backtranslation_on_real_paragraphs(default_model, admin_user):
    project = project_create(
        user=admin_user, data={"name": "Humpback", "task_type": "instruction", "modes": ["rate", "edit"]}
    )
    seed_tasks_import(project=project, rows=SEEDS)
    items = [Item.objects.create(project=project, text=text) for text in PARAGRAPHS]
    params = {
        "num_examples": 1,
        "max_example_chars": 200,
        "max_new_tokens": 40,
        "curate_max_new_tokens": 48,
        "seed": 7,
        # Generous: this test is about what the recipe stores, not speed; a loaded CI core is slow.
        "timeout": 900,
    }
    job = run(project, admin_user, "backtranslation", params, [i.pk for i in items])
    assert job.progress_done == len(items)
    for item in items:
        cand, failure = outcome(job, item)
        if cand is not None:
            assert cand.text.strip()  # the generated instruction
            assert cand.scores["curation_score"] in {1, 2, 3, 4, 5}
            assert isinstance(cand.scores["curation_reasoning"], str)
            assert cand.scores["kept"] is (cand.scores["curation_score"] >= 5)
            assert cand.provenance["raw_curate"]
        else:
            assert failure.reason in ("unparseable", "model_error") and failure.message
            assert failure.raw_output.strip()  # what the model said, for the admin to read


def test_self_consistency_weak_labels_on_sentiment(default_model, admin_user):
    project = project_create(
        user=admin_user,
        data={
            "name": "Sentiment",
            "task_type": "classification",
            "labels": ["positive", "negative"],
            "modes": ["label"],
        },
    )
    items = [Item.objects.create(project=project, text=text) for text in SENTENCES]
    params = {"samples": 3, "max_new_tokens": 12, "seed": 7, "timeout": 900}
    job = run(project, admin_user, "self_consistency", params, [i.pk for i in items])
    assert job.progress_done == len(items)
    voted = 0
    for item in items:
        cand, failure = outcome(job, item)
        if cand is not None:
            voted += 1
            assert cand.label in project.labels
            assert 0.0 <= cand.scores["agreement"] <= 1.0
            assert cand.scores["samples"] == 3 and sum(cand.scores["votes"].values()) <= 3
            assert cand.scores["votes"][cand.label] == round(cand.scores["agreement"] * 3)
            assert len(cand.provenance["raw_samples"]) == 3
        else:
            assert "None of the 3 samples gave an answer" in failure.message
            assert failure.raw_output.count("\n---\n") == 2  # all three raw samples kept
    assert voted >= 1  # the model names a label for at least one plain sentiment sentence
