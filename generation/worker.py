"""Starting a Celery worker process, for `manage.py quickstart` and the tests.

    from generation.worker import worker_command, worker_start
    process = worker_start()            # subprocess.Popen of one worker on queues default,gpu
    ...
    worker_stop(process)

The command it runs (also fine to type by hand):

    celery -A synthlab worker -Q default,gpu --concurrency 1 --loglevel INFO

A GPU host runs only the `gpu` queue: `celery -A synthlab worker -Q gpu --concurrency 1`.
The worker reads the same environment as the web server (DATABASE_URL, REDIS_URL,
SYNTHLAB_DATA_DIR, SYNTHLAB_MODEL_CACHE), so start it with that environment.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

DEFAULT_QUEUES = ("default", "gpu")


def worker_command(
    *,
    queues: Sequence[str] = DEFAULT_QUEUES,
    concurrency: int = 1,
    loglevel: str = "INFO",
    hostname: str | None = None,
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "synthlab",
        "worker",
        "-Q",
        ",".join(queues),
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        command += ["--hostname", hostname]
    return command


def worker_start(
    *,
    queues: Sequence[str] = DEFAULT_QUEUES,
    concurrency: int = 1,
    env: dict | None = None,
    cwd: str | None = None,
    stdout=None,
    stderr=None,
    loglevel: str = "INFO",
) -> subprocess.Popen:
    """Starts one worker in its own process group (so worker_stop ends its pool children too)."""
    from django.conf import settings

    environment = {**os.environ, **(env or {})}
    environment.setdefault(
        "DJANGO_SETTINGS_MODULE", os.environ.get("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")
    )
    return subprocess.Popen(
        worker_command(queues=queues, concurrency=concurrency, loglevel=loglevel),
        cwd=cwd or str(settings.BASE_DIR),
        env=environment,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def worker_stop(process: subprocess.Popen, *, timeout: float = 20.0, kill: bool = False) -> None:
    """Warm shutdown (SIGTERM: the current task finishes), or SIGKILL of the whole group when `kill`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
