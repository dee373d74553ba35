import os
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from annotation.models import Item, Project
from generation.backends import backends_close, locmem
from generation.worker import worker_start, worker_stop

from .tiny_model import tiny_model_build


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return tiny_model_build(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(autouse=True)
def _fresh_backends():
    """Each test loads its own model settings; nothing leaks between tests."""
    locmem.sent.clear()
    yield
    backends_close()


@pytest.fixture
def make_items():
    def make(project: Project, texts, **extra) -> list[Item]:
        return [Item.objects.create(project=project, text=text, **extra) for text in texts]

    return make


def wait_for(predicate, *, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {what}.")


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """Starts real Celery workers (subprocesses on queues default,gpu) against the test database and
    the same broker as this process; stops (or kills) them at the end."""
    started: list[subprocess.Popen] = []

    def start(name: str = "worker") -> subprocess.Popen:
        env = {
            "DJANGO_SETTINGS_MODULE": "tests.generation.worker_settings",
            "SYNTHLAB_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
            "SYNTHLAB_DATA_DIR": str(settings.DATA_DIR),
            "SYNTHLAB_MODEL_CACHE": str(settings.MODEL_CACHE_DIR),
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        log = open(tmp_path / f"{name}-{len(started)}.log", "w")  # noqa: SIM115 - closed with the process
        process = worker_start(env=env, stdout=log, stderr=subprocess.STDOUT, loglevel="INFO")
        process.log_path = tmp_path / f"{name}-{len(started)}.log"
        started.append(process)
        return process

    yield start
    for process in started:
        worker_stop(process, kill=True)


def worker_log(process) -> str:
    return (
        Path(process.log_path).read_text(errors="replace")[-4000:] if os.path.exists(process.log_path) else ""
    )
