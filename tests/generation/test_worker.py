"""Real Celery workers (subprocesses) on the configured broker: the filesystem broker on the
embedded run, Redis on the PostgreSQL + Redis run."""

import os
import signal
import time

import pytest

from annotation.models import Candidate
from annotation.services.projects import project_create
from generation import services
from generation.models import GenerationJob, ModelProbe

from .conftest import wait_for, worker_log

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_worker_killed_mid_job_then_restarted_finishes_without_duplicates(
    admin_user, make_items, tiny_model_dir, celery_worker_process
):
    project = project_create(
        user=admin_user, data={"name": "Chat", "task_type": "instruction", "modes": ["compare"], "overlap": 1}
    )
    project.model_settings = {"backend": "transformers", "model": str(tiny_model_dir)}
    project.save()
    items = make_items(project, [f"what is item {n} ?" for n in range(12)])
    job = services.job_create(
        project=project,
        user=admin_user,
        recipe="candidates",
        params={"n": 2, "max_new_tokens": 24, "batch_size": 1},
    )
    first = celery_worker_process("first")
    wait_for(
        lambda: GenerationJob.objects.get(pk=job.pk).progress_done >= 2,
        timeout=120,
        what=f"the first worker to make progress\n{worker_log(first)}",
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    killed = GenerationJob.objects.get(pk=job.pk)
    assert killed.status == "running" and killed.progress_done < killed.progress_total

    second = celery_worker_process("second")
    done = wait_for(
        lambda: (j := GenerationJob.objects.get(pk=job.pk)).is_finished and j,
        timeout=240,
        what=f"the restarted worker to finish the job\n{worker_log(second)}",
    )
    assert done.status == "succeeded", done.message
    assert done.progress_done == done.progress_total == 12
    assert done.worker != killed.worker
    for item in items:
        keys = sorted(Candidate.objects.filter(item=item).values_list("dedupe_key", flat=True))
        assert keys == ["candidates:0", "candidates:1"], (item.pk, keys)


def test_model_test_goes_through_the_worker(admin_user, tiny_model_dir, celery_worker_process):
    project = project_create(
        user=admin_user, data={"name": "Chat", "task_type": "instruction", "modes": ["rate"]}
    )
    project.model_settings = {
        "backend": "transformers",
        "model": str(tiny_model_dir),
        "sampling": {"max_new_tokens": 5},
    }
    project.save()
    probe = services.probe_create(project=project, user=admin_user, prompt="hello")
    broken = project_create(
        user=admin_user, data={"name": "Broken", "task_type": "instruction", "modes": ["rate"]}
    )
    broken.model_settings = {"backend": "transformers", "model": "/nonexistent/model"}
    broken.save()
    failing = services.probe_create(project=broken, user=admin_user, prompt="hello")
    assert ModelProbe.objects.get(pk=probe.pk).status == "queued"  # nothing ran in this process
    worker = celery_worker_process()
    answered = wait_for(
        lambda: (p := ModelProbe.objects.get(pk=probe.pk)).is_finished and p,
        timeout=90,
        what=f"the model test\n{worker_log(worker)}",
    )
    assert answered.status == "succeeded" and answered.answer and answered.seconds is not None
    failed = wait_for(
        lambda: (p := ModelProbe.objects.get(pk=failing.pk)).is_finished and p, timeout=60, what="failure"
    )
    assert (
        failed.status == "failed"
        and "Could not load the model folder" in failed.error
        or "/nonexistent/model" in failed.error
    )
    time.sleep(0)  # the worker is stopped by the fixture
