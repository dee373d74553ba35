"""`manage.py generate` runs the same job from the command line with a progress bar."""

import io

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Candidate
from generation.models import GenerationJob

pytestmark = pytest.mark.django_db


def test_generate_command_runs_a_job_with_a_progress_bar(project, make_items, tiny_model_dir):
    project.model_settings = {"backend": "transformers", "model": str(tiny_model_dir)}
    project.save()
    make_items(project, ["good", "bad", "fine"], split="eval")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "generate",
        project.slug,
        "--recipe",
        "weak_label",
        "--split",
        "eval",
        "--param",
        "batch_size=2",
        stdout=out,
        stderr=err,
    )
    job = GenerationJob.objects.get()
    assert job.status == "succeeded" and job.created_by is None and job.params["batch_size"] == 2
    assert f"Job {job.pk} succeeded: 3 candidates, 0 failures." in out.getvalue()
    assert "3/3" in err.getvalue()  # the tqdm bar
    assert Candidate.objects.filter(item__project=project).count() == 3


def test_generate_command_says_what_is_wrong(project):
    with pytest.raises(CommandError, match="No project 'nope'"):
        call_command("generate", "nope")
    with pytest.raises(CommandError, match="No items match"):
        call_command("generate", str(project.pk))
