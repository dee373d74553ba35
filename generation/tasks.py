"""Celery tasks of the generation app. Everything here is routed to the `gpu` queue
(settings.CELERY_TASK_ROUTES). Tasks take ids, reload, and call a service that is safe to run twice:
job_run claims the job (a finished, cancelled or live-elsewhere job makes it a no-op) and skips
items whose candidates exist, so acks_late redelivery never duplicates anything."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import close_old_connections, connections

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="generation.tasks.generation_job_run", acks_late=True, reject_on_worker_lost=True)
def generation_job_run(job_id: int) -> None:
    close_old_connections()
    services.job_run(job_id=job_id)


@shared_task(name="generation.tasks.generation_probe_run", acks_late=True, reject_on_worker_lost=True)
def generation_probe_run(probe_id: int) -> None:
    close_old_connections()
    services.probe_run(probe_id=probe_id)


@worker_ready.connect
def recover_jobs_on_worker_start(sender=None, **kwargs):
    """A worker that was killed mid-job leaves it `running`; the next worker to start queues it again
    (only the gpu-queue workers do generation, but any worker may notice)."""
    try:
        recovered = services.jobs_recover()
        if recovered:
            logger.info("Queued again generation jobs left by a stopped worker: %s", recovered)
    except Exception:
        logger.exception("Could not check for interrupted generation jobs")
    finally:
        connections.close_all()
