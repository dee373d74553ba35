"""Every write of the generation app: model settings, jobs (create, claim, run, cancel, recover),
model tests. Keyword-only functions named <thing>_<action>.

Jobs run on a Celery worker (queue `gpu`), never in a web request: job_create only checks, stores
and enqueues (after commit); job_run is what the worker task (and `manage.py generate`) calls.
Progress goes to the browser from job_progress_publish, after each batch's commit, to the Channels
group `job-<id>` as a `job.progress` event.
"""

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from annotation.models import Candidate, CandidateSource, Item, Project, Split
from annotation.services.tasks import review_tasks_sync
from synthlab.errors import ServiceUnavailable, ValidationFailed

from . import selectors
from .backends import SELECTABLE, ChatRequest, ModelUnavailable, Sampling, backend_for, backend_name
from .conf import conf
from .models import TERMINAL_STATUSES, FailureReason, GenerationJob, JobFailure, JobStatus, ModelProbe
from .parsing import db_safe
from .recipes import Failure, ItemResult, Recipe, RecipeContext, recipe_get

logger = logging.getLogger(__name__)

MASK = "********"
MODEL_KEYS = (
    "backend",
    "model",
    "revision",
    "device",
    "dtype",
    "batch_size",
    "base_url",
    "api_key",
    "timeout",
    "max_retries",
    "max_concurrency",
    "sampling",
)


# Model settings -------------------------------------------------------------------------------------


def model_settings_validate(*, data: dict, current: dict | None = None) -> dict:
    """Cleaned model settings. An api_key left blank or masked keeps the stored one."""
    current = current or {}
    details = []
    backend = str(data.get("backend") or "default")
    if backend not in SELECTABLE and backend != "locmem":
        details.append({"field": "backend", "message": f"Choose one of: {', '.join(SELECTABLE)}."})
    clean: dict = {"backend": backend}
    for key in ("model", "revision", "device", "dtype", "base_url"):
        value = str(data.get(key) or "").strip()
        if value:
            clean[key] = value
    if backend == "transformers" and not clean.get("model"):
        details.append({"field": "model", "message": "Give a local folder or a Hugging Face id."})
    if backend == "openai":
        if not clean.get("base_url", "").startswith(("http://", "https://")):
            details.append(
                {"field": "base_url", "message": "Give the endpoint's URL, e.g. http://host:8000/v1."}
            )
        if not clean.get("model"):
            details.append({"field": "model", "message": "Give the model name the endpoint serves."})
    api_key = data.get("api_key")
    if api_key in (None, "", MASK):
        if current.get("api_key"):
            clean["api_key"] = current["api_key"]
    else:
        clean["api_key"] = str(api_key).strip()
    if data.get("clear_api_key"):
        clean.pop("api_key", None)
    for key, low, high in (("batch_size", 1, 512), ("max_retries", 0, 10), ("max_concurrency", 1, 256)):
        if data.get(key) not in (None, ""):
            try:
                value = int(data[key])
            except (TypeError, ValueError):
                value = low - 1
            if not low <= value <= high:
                details.append({"field": key, "message": f"A whole number from {low} to {high}."})
            clean[key] = value
    if data.get("timeout") not in (None, ""):
        try:
            clean["timeout"] = float(data["timeout"])
            if clean["timeout"] <= 0:
                raise ValueError
        except (TypeError, ValueError):
            details.append({"field": "timeout", "message": "A positive number of seconds."})
    sampling = data.get("sampling") or {}
    if not isinstance(sampling, dict):
        details.append({"field": "sampling", "message": "Must be an object."})
    else:
        try:
            clean["sampling"] = {
                k: v
                for k, v in Sampling.from_dict(sampling).as_dict().items()
                if k in sampling and sampling[k] != ""
            }
        except ValueError as exc:
            details.append({"field": "sampling", "message": str(exc)})
    for key in ("responses", "scores"):  # the test backend's canned answers
        if backend == "locmem" and key in data:
            clean[key] = data[key]
    if details:
        raise ValidationFailed(details[0]["message"], details=details)
    return clean


def model_settings_update(*, project: Project, data: dict) -> Project:
    project.model_settings = model_settings_validate(data=data, current=project.model_settings or {})
    project.save(update_fields=["model_settings", "updated_at"])
    return project


def model_settings_public(model_settings: dict) -> dict:
    """Model settings as shown back: the API key masked."""
    shown = dict(model_settings or {})
    if shown.get("api_key"):
        shown["api_key"] = MASK
    return shown


# Broker ---------------------------------------------------------------------------------------------


def broker_check() -> None:
    """Raises ServiceUnavailable when jobs cannot be queued. Nothing ever runs in-process instead."""
    from synthlab.celery import app

    url = app.conf.broker_url or ""
    if url.startswith("filesystem"):
        options = app.conf.broker_transport_options or {}
        folder = Path(options.get("data_folder_in") or "")
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ServiceUnavailable(
                f"The job queue folder {folder} is missing or not writable, so the job cannot be queued; "
                "nothing was started. Check SYNTHLAB_DATA_DIR."
            )
        return
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=conf("GENERATION_BROKER_CHECK_SECONDS"))
    except Exception as exc:
        raise ServiceUnavailable(
            f"The job queue (broker) is not reachable ({type(exc).__name__}: {exc}), so the job cannot be "
            "queued; nothing was started. Start Redis or check REDIS_URL, then try again."
        ) from None


def _enqueue(task, object_id: int, on_error: Callable[[str], None]) -> None:
    try:
        task.apply_async(args=[object_id], retry=False)
    except Exception as exc:  # the broker went away between the check and the commit
        logger.exception("Could not enqueue %s(%s)", task.name, object_id)
        on_error(f"Could not reach the job queue ({type(exc).__name__}: {exc}); nothing was started.")


# Jobs: create, cancel --------------------------------------------------------------------------------


def item_filter_clean(*, project: Project, data) -> dict:
    if data in (None, ""):
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed(
            'items must be an object such as {"split": "eval"} or {"without_candidates": true}.',
            details=[{"field": "items", "message": "Invalid."}],
        )
    clean: dict = {}
    scope = data.get("scope")
    split = data.get("split")
    if split not in (None, ""):
        if split not in Split.values:
            raise ValidationFailed(
                f"split must be one of: {', '.join(Split.values)}.",
                details=[{"field": "items.split", "message": "Invalid."}],
            )
        clean["split"] = split
    if data.get("without_candidates") in (True, "true", "1", "on", 1) or scope == "without_candidates":
        clean["without_candidates"] = True
    if data.get("ids") is not None:
        ids = data["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValidationFailed(
                "items.ids must be a list of item ids.",
                details=[{"field": "items.ids", "message": "Invalid."}],
            )
        clean["ids"] = sorted(set(ids))
    if data.get("limit") not in (None, ""):
        try:
            limit = int(data["limit"])
        except (TypeError, ValueError):
            limit = 0
        if limit < 1:
            raise ValidationFailed(
                "items.limit is a whole number of at least 1.",
                details=[{"field": "items.limit", "message": "Invalid."}],
            )
        ids = selectors.items_in_scope(project=project, item_filter=clean).values_list("pk", flat=True)[
            :limit
        ]
        clean["ids"] = list(ids)
    return clean


def job_create(
    *, project: Project, user, recipe: str, params: dict | None = None, items=None
) -> GenerationJob:
    """Checks, stores and queues a job for a worker. 400 on bad input, 503 when the queue is down:
    in both cases nothing is stored and nothing runs."""
    return _job_store(project=project, user=user, recipe=recipe, params=params, items=items, enqueue=True)


def job_create_local(
    *, project: Project, recipe: str, params: dict | None = None, items=None
) -> GenerationJob:
    """A job that the calling process runs itself with job_run (`manage.py generate`); not queued."""
    return _job_store(project=project, user=None, recipe=recipe, params=params, items=items, enqueue=False)


def _job_store(*, project, user, recipe, params, items, enqueue: bool) -> GenerationJob:
    recipe_obj = recipe_get(recipe)
    clean_params = recipe_obj.params_clean(project=project, params=params or {})
    item_filter = item_filter_clean(project=project, data=items)
    model_settings = dict(project.model_settings or {})
    name = backend_name(model_settings)
    if name not in SELECTABLE and name != "locmem":
        message = f"Unknown model backend {name!r}; choose one of: {', '.join(SELECTABLE)}."
        raise ValidationFailed(message, details=[{"field": "model", "message": message}])
    if enqueue:
        broker_check()
    with transaction.atomic():
        id_max = Item.objects.filter(project=project).aggregate(m=Max("pk"))["m"] or 0
        job = GenerationJob.objects.create(
            project=project,
            recipe=recipe_obj.name,
            params=clean_params,
            item_filter=item_filter,
            model_settings={k: v for k, v in model_settings.items() if k != "api_key"},
            item_id_max=id_max,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        total = selectors.job_items(job=job).count()
        if total == 0:
            transaction.set_rollback(True)
            raise ValidationFailed(
                "No items match this scope, so there is nothing to generate; import items or widen the scope.",
                details=[{"field": "items", "message": "No items match."}],
            )
        job.progress_total = total
        job.save(update_fields=["progress_total"])
        if enqueue:
            transaction.on_commit(lambda: job_enqueue(job_id=job.pk))
    return job


def job_follow(
    *, job_id: int, on_progress: Callable[[GenerationJob], None], interval: float = 1.0
) -> GenerationJob:
    """Polls a queued job until it finishes, reporting each change (for the CLI's --enqueue)."""
    seen = None
    while True:
        job = GenerationJob.objects.get(pk=job_id)
        state = (job.status, job.progress_done, job.failures_count)
        if state != seen:
            on_progress(job)
            seen = state
        if job.is_finished:
            return job
        time.sleep(interval)


def job_enqueue(*, job_id: int) -> None:
    from .tasks import generation_job_run

    def failed(message):
        GenerationJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, message=message, finished_at=timezone.now()
        )

    _enqueue(generation_job_run, job_id, failed)


def job_cancel(*, job: GenerationJob) -> GenerationJob:
    """Marks the job cancelled; a running worker stops after its current batch. Candidates already
    stored stay."""
    with transaction.atomic():
        changed = (
            GenerationJob.objects.filter(pk=job.pk)
            .exclude(status__in=TERMINAL_STATUSES)
            .update(status=JobStatus.CANCELLED, finished_at=timezone.now(), message="Cancelled.")
        )
        job.refresh_from_db()
        if changed:
            job_finished_webhook(job_id=job.pk)
            transaction.on_commit(lambda: job_progress_publish(job_id=job.pk))
    return job


# Jobs: progress -------------------------------------------------------------------------------------


def job_progress(job: GenerationJob) -> dict:
    """What the progress bar shows; the websocket event and the polled page share it."""
    timings = job.timings or {}
    total = job.progress_total or 0
    return {
        "job": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "finished": job.is_finished,
        "done": job.progress_done,
        "total": total,
        "percent": round(100 * job.progress_done / total) if total else 0,
        "failures": job.failures_count,
        "created": job.candidates_created,
        "tasks_created": job.tasks_created,
        "tokens": job.tokens,
        "items_per_second": timings.get("items_per_second"),
        "tokens_per_second": timings.get("tokens_per_second"),
        "message": job.message,
    }


def job_progress_publish(*, job_id: int) -> None:
    """Sends the job's progress to the Channels group `job-<id>` (event type `job.progress`)."""
    from channels.layers import get_channel_layer

    job = GenerationJob.objects.filter(pk=job_id).first()
    layer = get_channel_layer()
    if job is None or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            job.group_name, {"type": "job.progress", "progress": job_progress(job)}
        )
    except Exception:  # progress is a courtesy: a channel layer hiccup must not fail the job
        logger.warning("Could not publish progress of job %s", job_id, exc_info=True)


# Jobs: run (in the worker) ---------------------------------------------------------------------------


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed worker whose parent has not reaped it yet is a zombie: gone all the same
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _worker_gone(job: GenerationJob, *, now=None) -> bool:
    """Whether the worker that holds a running job has stopped: its heartbeat is stale, or it ran on
    this host and its process no longer exists."""
    now = now or timezone.now()
    stale = timedelta(seconds=conf("GENERATION_JOB_STALE_SECONDS"))
    if job.heartbeat_at is None or now - job.heartbeat_at > stale:
        return True
    host, _, pid = job.worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid) != os.getpid() and not _pid_alive(int(pid))
    return False


def job_claim(*, job_id: int) -> GenerationJob | None:
    """Takes the job for this process, or answers None when there is nothing to do: it is
    finished or cancelled, or another live worker is running it. Locks the job row."""
    me = worker_identity()
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().select_related("project").filter(pk=job_id).first()
        if job is None or job.status in TERMINAL_STATUSES:
            return None
        if job.status == JobStatus.RUNNING and job.worker != me and not _worker_gone(job):
            return None
        now = timezone.now()
        job.status = JobStatus.RUNNING
        job.worker = me
        job.heartbeat_at = now
        job.started_at = job.started_at or now
        job.save(update_fields=["status", "worker", "heartbeat_at", "started_at"])
    return job


def _job_finish(job_id: int, status: str, message: str = "", **extra) -> None:
    changed = GenerationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=status, message=message, finished_at=timezone.now(), **extra
    )
    if changed:
        job_finished_webhook(job_id=job_id)
    transaction.on_commit(lambda: job_progress_publish(job_id=job_id))


def job_finished_webhook(*, job_id: int) -> None:
    """Records the project's `job.finished` webhook deliveries (sent by a worker after commit)."""
    from annotation.services.webhooks import webhook_event_emit

    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None:
        return
    webhook_event_emit(
        project=job.project_id,
        event="job.finished",
        data={
            "job": job.pk,
            "recipe": job.recipe,
            "status": job.status,
            "message": job.message,
            "progress": {"done": job.progress_done, "total": job.progress_total},
            "created": {"candidates": job.candidates_created, "tasks": job.tasks_created},
            "failures": job.failures_count,
        },
    )


def job_model_settings(job: GenerationJob) -> dict:
    """The settings the job was started with, plus the API key, which is only kept on the project."""
    model_settings = {k: v for k, v in (job.model_settings or {}).items() if k != "api_key"}
    api_key = (job.project.model_settings or {}).get("api_key")
    if api_key:
        model_settings["api_key"] = api_key
    if job.params.get("batch_size"):
        model_settings["batch_size"] = job.params["batch_size"]
    return model_settings


def job_results_store(
    *, job: GenerationJob, recipe: Recipe, backend_info: dict, results: list[ItemResult]
) -> dict:
    """Stores one batch: candidates (a dedupe key that exists already is skipped, so redelivery
    stores nothing twice), failures, review tasks and the job's counters, in one transaction."""
    rows = []
    failures = []
    tokens = 0
    for result in results:
        tokens += result.tokens
        for draft in result.drafts:
            rows.append(
                Candidate(
                    item=result.item,
                    text=db_safe(draft.text),
                    label=db_safe(draft.label),
                    source=CandidateSource.MODEL,
                    model=backend_info.get("model", "")[:255],
                    recipe=recipe.name,
                    scores=db_safe(draft.scores),
                    dedupe_key=f"{recipe.name}:{draft.sample}",
                    provenance=db_safe(
                        {
                            **backend_info,
                            "recipe": recipe.name,
                            "recipe_version": recipe.version,
                            "sample_index": draft.sample,
                            "job": job.pk,
                            **draft.provenance,
                        }
                    ),
                )
            )
        if result.failure:
            failures.append(
                JobFailure(
                    job=job,
                    item=result.item,
                    reason=result.failure.reason
                    if result.failure.reason in FailureReason.values
                    else "model_error",
                    message=db_safe(result.failure.message[:5000]),
                    raw_output=db_safe((result.failure.raw_output or "")[:100_000]),
                )
            )
    with transaction.atomic():
        # The job row lock keeps two deliveries of the same job from storing one batch twice.
        GenerationJob.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True).first()
        keys = {(c.item_id, c.dedupe_key) for c in rows}
        existing = set(
            Candidate.objects.filter(
                item_id__in={item for item, _ in keys}, dedupe_key__in={key for _, key in keys}
            ).values_list("item_id", "dedupe_key")
        )
        fresh = [c for c in rows if (c.item_id, c.dedupe_key) not in existing]
        Candidate.objects.bulk_create(fresh, ignore_conflicts=True)
        failed_before = set(
            JobFailure.objects.filter(job=job, item_id__in=[f.item_id for f in failures]).values_list(
                "item_id", flat=True
            )
        )
        new_failures = [f for f in failures if f.item_id not in failed_before]
        JobFailure.objects.bulk_create(new_failures, ignore_conflicts=True)
        tasks = review_tasks_sync(project=job.project, item_ids={c.item_id for c in fresh}) if fresh else 0
        done = min(job.progress_total, job.progress_done + len(results))
        job.progress_done = done
        GenerationJob.objects.filter(pk=job.pk).update(
            progress_done=done,
            candidates_created=F("candidates_created") + len(fresh),
            tasks_created=F("tasks_created") + tasks,
            failures_count=F("failures_count") + len(new_failures),
            tokens=F("tokens") + tokens,
            heartbeat_at=timezone.now(),
        )
        transaction.on_commit(lambda: job_progress_publish(job_id=job.pk))
    return {"created": len(fresh), "failures": len(new_failures), "tokens": tokens}


def job_run(
    *, job_id: int, on_progress: Callable[[GenerationJob], None] | None = None
) -> GenerationJob | None:
    """Runs a job to the end (worker task and `manage.py generate`). Safe to call twice or after a
    crash: it claims the job first, then does only the items whose candidates are missing."""
    job = job_claim(job_id=job_id)
    if job is None:
        return None
    recipe = recipe_get(job.recipe)
    started = time.monotonic()
    processed = tokens = 0
    try:
        load_started = time.monotonic()
        backend = backend_for(job_model_settings(job))
        load_seconds = time.monotonic() - load_started
        backend_info = backend.describe()
        pending = selectors.job_pending(job=job, dedupe_keys=recipe.dedupe_keys(job.params))
        job.progress_done = max(0, job.progress_total - len(pending))
        GenerationJob.objects.filter(pk=job.pk).update(
            progress_done=job.progress_done,
            timings={**(job.timings or {}), "model_load_seconds": round(load_seconds, 3)},
        )
        job_progress_publish(job_id=job.pk)
        ctx = RecipeContext(
            project=job.project,
            params=job.params,
            backend=backend,
            sampling=Sampling.from_dict(job.params),
            job_id=job.pk,
            pending=pending,
        )
        batch_size = int(
            job.params.get("batch_size") or getattr(backend, "batch_size", 0) or conf("GENERATION_BATCH_SIZE")
        )
        ids = list(pending)
        for start in range(0, len(ids), batch_size):
            status = GenerationJob.objects.filter(pk=job.pk).values_list("status", flat=True).first()
            if status != JobStatus.RUNNING:
                break
            chunk_ids = ids[start : start + batch_size]
            items = list(Item.objects.filter(pk__in=chunk_ids).order_by("pk"))
            try:
                results = recipe.run(ctx=ctx, items=items) if items else []
            except ModelUnavailable:
                raise
            except Exception as exc:  # a recipe bug on one batch is logged per item; the job goes on
                logger.exception("Recipe %s failed on a batch of job %s", recipe.name, job.pk)
                results = [
                    ItemResult(item=item, failure=Failure("model_error", f"{type(exc).__name__}: {exc}"))
                    for item in items
                ]
            missing = len(chunk_ids) - len(items)  # deleted meanwhile: counted as done
            outcome = job_results_store(job=job, recipe=recipe, backend_info=backend_info, results=results)
            if missing:
                job.progress_done = min(job.progress_total, job.progress_done + missing)
                GenerationJob.objects.filter(pk=job.pk).update(progress_done=job.progress_done)
            processed += len(chunk_ids)
            tokens += outcome["tokens"]
            elapsed = max(time.monotonic() - started, 1e-6)
            GenerationJob.objects.filter(pk=job.pk).update(
                timings={
                    "model_load_seconds": round(load_seconds, 3),
                    "run_seconds": round(elapsed, 3),
                    "items_per_second": round(processed / elapsed, 3),
                    "tokens_per_second": round(tokens / elapsed, 2),
                }
            )
            if on_progress:
                job.refresh_from_db()
                on_progress(job)
    except ModelUnavailable as exc:
        _job_finish(job.pk, JobStatus.FAILED, exc.message)
    except Exception as exc:
        logger.exception("Job %s failed", job.pk)
        _job_finish(
            job.pk, JobStatus.FAILED, f"The job stopped on an unexpected error: {type(exc).__name__}: {exc}"
        )
        raise
    else:
        failures = (
            GenerationJob.objects.filter(pk=job.pk).values_list("failures_count", flat=True).first() or 0
        )
        note = f"{failures} item(s) failed; see the list below." if failures else ""
        _job_finish(job.pk, JobStatus.SUCCEEDED, note)
    job.refresh_from_db()
    if on_progress:
        on_progress(job)
    return job


def jobs_recover() -> list[int]:
    """Run at worker start: queues again the jobs that a crashed worker left (running on a worker
    that is gone) and the queued ones (their message may have been lost with the worker). A job
    queued twice runs once: job_claim makes the second delivery a no-op."""
    recovered = []
    for job in GenerationJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("id"):
        if job.status == JobStatus.RUNNING:
            if not _worker_gone(job):
                continue
            GenerationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker=job.worker).update(
                status=JobStatus.QUEUED, worker=""
            )
        recovered.append(job.pk)
        job_enqueue(job_id=job.pk)
    return recovered


# Model tests ---------------------------------------------------------------------------------------

PROBE_MAX_CHARS = 4000


def probe_create(*, project: Project, user, prompt: str) -> ModelProbe:
    prompt = str(prompt or "").strip()
    if not prompt:
        raise ValidationFailed(
            "Write a prompt to send to the model.", details=[{"field": "prompt", "message": "Required."}]
        )
    if len(prompt) > PROBE_MAX_CHARS:
        raise ValidationFailed(
            f"Keep the test prompt under {PROBE_MAX_CHARS} characters.",
            details=[{"field": "prompt", "message": "Too long."}],
        )
    broker_check()
    with transaction.atomic():
        probe = ModelProbe.objects.create(
            project=project,
            prompt=prompt,
            backend=backend_name(project.model_settings),
            model=str((project.model_settings or {}).get("model") or ""),
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        transaction.on_commit(lambda: probe_enqueue(probe_id=probe.pk))
    return probe


def probe_enqueue(*, probe_id: int) -> None:
    from .tasks import generation_probe_run

    def failed(message):
        ModelProbe.objects.filter(pk=probe_id, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, error=message, finished_at=timezone.now()
        )

    _enqueue(generation_probe_run, probe_id, failed)


def probe_run(*, probe_id: int) -> ModelProbe | None:
    """Answers a model test in the worker. A second delivery of the same test does nothing."""
    claimed = ModelProbe.objects.filter(pk=probe_id, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING)
    if not claimed:
        return None
    probe = ModelProbe.objects.select_related("project").get(pk=probe_id)
    started = time.monotonic()
    answer, error, status = "", "", JobStatus.SUCCEEDED
    model_settings = dict(probe.project.model_settings or {})
    try:
        backend = backend_for(model_settings)
        sampling = Sampling.from_dict(model_settings.get("sampling"))
        sampling = Sampling.from_dict({"max_new_tokens": min(sampling.max_new_tokens, 256)}, base=sampling)
        generation = backend.generate(
            [ChatRequest(messages=[{"role": "user", "content": probe.prompt}], sampling=sampling)]
        )[0]
        if generation.error:
            status, error, answer = JobStatus.FAILED, generation.error.message, generation.text
        else:
            answer = generation.text
        model = backend.describe().get("model", "")
    except ModelUnavailable as exc:
        status, error, model = JobStatus.FAILED, exc.message, probe.model
    except Exception as exc:
        logger.exception("Model test %s failed", probe_id)
        status, error, model = JobStatus.FAILED, f"{type(exc).__name__}: {exc}", probe.model
    ModelProbe.objects.filter(pk=probe_id).update(
        status=status,
        answer=db_safe(answer),
        error=db_safe(error),
        model=str(model)[:255],
        seconds=round(time.monotonic() - started, 3),
        finished_at=timezone.now(),
    )
    probe.refresh_from_db()
    return probe
