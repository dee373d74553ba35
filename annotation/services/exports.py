"""Exports: create (validate, store, queue after commit), preview (count rows without writing),
run (claim with a status guard, stream rows to a file, finish) and progress events.

Progress goes to the Channels group `export-<id>` as `export.progress` events, sent after commit
from `export_progress_send` only; pages without a cross-process channel layer poll instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from ..exports.card import dataset_card
from ..exports.parallel import export_parallel, parallel_split
from ..exports.rows import FORMATS, RowContext, eval_hashes, export_rows, export_schema, items_total
from ..exports.spec import ExportSpec, export_spec_from, export_spec_validate
from ..exports.writers import file_suffix, writer_open
from ..models import Export, ExportStatus, Project, ReviewTask, TaskStatus

logger = logging.getLogger(__name__)

PREVIEW_SECONDS = 5.0
PROGRESS_EVERY_SECONDS = 0.5


def _stale_seconds() -> int:
    # A running export whose worker died stops beating; after this long another run may take over.
    return getattr(settings, "SYNTHLAB_EXPORT_STALE_SECONDS", 600)


def export_create(
    *,
    project: Project,
    user,
    format: str,
    file_type: str = "jsonl",
    filters: dict | None = None,
    options: dict | None = None,
) -> Export:
    """Checks the request, stores the export as queued and queues its run once the transaction
    commits. Bad input (400) or a task queue that cannot be reached (503) store nothing. The
    caller must be a project admin (checked by the API/view)."""
    from generation.services import broker_check

    spec = export_spec_validate(
        project=project, format=format, file_type=file_type, filters=filters, options=options
    )
    broker_check()
    with transaction.atomic():
        export = Export.objects.create(
            project=project,
            format=spec.format,
            file_type=spec.file_type,
            filters=spec.filters,
            options=spec.options,
            created_by=user,
            status=ExportStatus.QUEUED,
        )
        transaction.on_commit(partial(_export_enqueue, export.pk))
    return export


def _export_enqueue(export_id: int) -> None:
    from ..tasks import export_run_task

    try:
        export_run_task.apply_async((export_id,), queue="default", retry=False)
    except Exception as exc:  # the broker went away after the check: say so instead of staying queued
        logger.exception("could not queue export %s", export_id)
        Export.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.FAILED,
            message=f"Could not queue the export (is the broker running?): {exc}",
            finished_at=timezone.now(),
        )
        export_progress_send(export_id=export_id)


def export_preview(
    *,
    project: Project,
    format: str,
    file_type: str = "jsonl",
    filters: dict | None = None,
    options: dict | None = None,
    seconds: float = PREVIEW_SECONDS,
) -> dict:
    """How many rows the export would have, by rule, and what it would leave out; runs the same
    rules without writing. Past `seconds` it stops and extrapolates (`exact` is then false)."""
    spec = export_spec_validate(
        project=project, format=format, file_type=file_type, filters=filters, options=options
    )
    total = items_total(project, spec)
    with _read_snapshot():
        ctx = _context(project, spec)
        for _ in export_rows(project, spec, ctx, deadline=time.monotonic() + seconds):
            pass
    exact = ctx.items >= total
    counts = ctx.counts()
    return {
        "rows": ctx.rows,
        "exact": exact,
        "estimated_rows": ctx.rows if exact else round(ctx.rows * total / max(ctx.items, 1)),
        "items_scanned": ctx.items,
        "items_total": total,
        "by_rule": counts["by_rule"],
        "dropped": counts["dropped"],
        "eval_leaks_removed": counts["eval_leaks_removed"],
        "message": "" if ctx.rows else _empty_message(project, spec, counts),
    }


def _context(project: Project, spec: ExportSpec) -> RowContext:
    hashes = eval_hashes(project) if FORMATS[spec.format].training else frozenset()
    return RowContext(project=project, spec=spec, eval_hashes=hashes)


def _empty_message(project: Project, spec: ExportSpec, counts: dict) -> str:
    split = spec.filter("split", "train")
    if not counts["items_scanned"]:
        return f"No rows: the project has no {split} items."
    modes = FORMATS[spec.format].modes
    done = ReviewTask.objects.filter(
        project=project, item__split=split, mode__in=modes, status=TaskStatus.DONE
    ).exists()
    if not done and spec.filter("completed_only", True) and spec.format != "eval":
        return (
            f"No rows: no {'/'.join(modes)} review task on {split} items is complete yet (a task completes "
            f"when {project.overlap} annotator(s) have answered it). Review more, or turn off "
            "'completed tasks only'."
        )
    dropped = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items())
    removed = counts.get("eval_leaks_removed") or 0
    return (
        "No rows matched the rules and filters."
        + (f" Left out: {dropped}." if dropped else "")
        + (f" Eval prompts removed: {removed}." if removed else "")
    )


def _export_claim(export_id: int) -> Export | None:
    """Marks the export running if it is queued, or running with a stale heartbeat (its worker
    died). Anything else (running elsewhere, finished) answers None: a rerun is a no-op."""
    now = timezone.now()
    with transaction.atomic():
        export = Export.objects.select_for_update().select_related("project").filter(pk=export_id).first()
        if export is None:
            return None
        if export.status == ExportStatus.RUNNING:
            beat = (export.counts or {}).get("heartbeat_at")
            beat_at = dt.datetime.fromisoformat(beat) if beat else None
            if beat_at and now - beat_at < dt.timedelta(seconds=_stale_seconds()):
                return None
        elif export.status != ExportStatus.QUEUED:
            return None
        export.status = ExportStatus.RUNNING
        export.progress_done = 0
        export.row_count = 0
        export.message = ""
        export.counts = {"heartbeat_at": now.isoformat()}
        export.save(update_fields=["status", "progress_done", "row_count", "message", "counts"])
        transaction.on_commit(partial(export_progress_send, export_id=export.pk))
    return export


@contextmanager
def _read_snapshot():
    """On PostgreSQL, reads the export inside one read-only REPEATABLE READ transaction: every
    cursor sees the same snapshot and streams (outside a transaction Django's server-side cursors
    are WITH HOLD, which copies each whole result on the server before the first row). Progress
    is then written through a second connection, which this yields, so others see it. On SQLite
    (or inside a caller's transaction) it does nothing and yields None: a transaction there would
    take SQLite's write lock for the whole export."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield None
        return
    side = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield side
    finally:
        side.close()


class _Progress:
    """Writes progress (and the heartbeat a stale-run takeover looks at) at most every
    PROGRESS_EVERY_SECONDS, and tells the export's group."""

    def __init__(self, export_id: int, side=None):
        self.export_id = export_id
        self.side = side
        self.last = 0.0

    def __call__(self, ctx: RowContext) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        counts = {"heartbeat_at": timezone.now().isoformat(), "rows": ctx.rows}
        if self.side is None:
            Export.objects.filter(pk=self.export_id, status=ExportStatus.RUNNING).update(
                progress_done=ctx.items, row_count=ctx.rows, counts=counts
            )
        else:
            with self.side.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Export._meta.db_table} SET progress_done = %s, row_count = %s, "
                    "counts = CAST(%s AS jsonb) WHERE id = %s AND status = %s",
                    [ctx.items, ctx.rows, json.dumps(counts), self.export_id, ExportStatus.RUNNING],
                )
        export_progress_send(export_id=self.export_id)


def export_run(*, export_id: int) -> Export | None:
    """Runs a queued export to its file. Safe to call twice: a second call finds it claimed or
    finished and does nothing. Answers the export, or None when there was nothing to do (or the
    export was deleted while it ran)."""
    export = _export_claim(export_id)
    if export is None:
        return None
    writer = None
    try:
        spec = export_spec_from(export)
        project = export.project
        total = items_total(project, spec)
        Export.objects.filter(pk=export.pk).update(progress_total=total)
        directory = Path(settings.EXPORT_DIR) / str(project.pk)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{project.slug}-{spec.format}-{export.pk}"
        final = directory / (name + file_suffix(spec.file_type, spec.option("archive")))
        part = final.with_name(final.name + ".part")
        writer = writer_open(
            spec.file_type,
            part,
            export_schema(spec) if spec.file_type != "jsonl" else None,
            split=spec.filter("split", "train"),
            folder=name,
            archive=spec.option("archive"),
        )
        with _read_snapshot() as side:
            ctx = _context(project, spec)
            progress = _Progress(export.pk, side)
            split_id = parallel_split(project, spec, total, snapshot=side is not None)
            if split_id is None:
                for row in export_rows(project, spec, ctx, on_progress=progress):
                    writer.write(row)
            else:
                export_parallel(
                    project,
                    spec,
                    ctx,
                    writer,
                    split_id=split_id,
                    part=final.with_name(final.name + ".part2"),
                    on_progress=progress,
                )
        counts = ctx.counts()
        # The card goes into a `datasets` folder only.
        writer.close(
            card=dataset_card(export=export, spec=spec, counts=counts, folder=name) if writer.CARD else ""
        )
        writer = None
        os.replace(part, final)
        message = (
            f"Exported {ctx.rows} rows from {ctx.items} items."
            + (
                f" Removed {ctx.eval_leaks_removed} row{'' if ctx.eval_leaks_removed == 1 else 's'} whose prompt"
                " is in the eval split."
                if ctx.eval_leaks_removed
                else ""
            )
            if ctx.rows
            else _empty_message(project, spec, counts)
        )
        file_path = str(final.relative_to(Path(settings.EXPORT_DIR)))
        with transaction.atomic():
            stored = Export.objects.filter(pk=export.pk).update(
                status=ExportStatus.SUCCEEDED,
                row_count=ctx.rows,
                counts=counts,
                progress_done=ctx.items,
                progress_total=total,
                message=message,
                file_path=file_path,
                finished_at=timezone.now(),
            )
            if not stored:
                # The export (or its project) was deleted while it ran: no row will ever name
                # the file, so it goes too.
                transaction.on_commit(partial(export_files_discard, file_path=file_path))
                return None
            _webhook_emit(export.pk)
            transaction.on_commit(partial(export_progress_send, export_id=export.pk))
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        if writer is not None:
            writer.abort()
        Export.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED, message=f"The export failed: {exc}", finished_at=timezone.now()
        )
        export_progress_send(export_id=export.pk)
    return Export.objects.filter(pk=export.pk).first()


def _webhook_emit(export_id: int) -> None:
    from .webhooks import webhook_event_emit

    export = Export.objects.get(pk=export_id)
    webhook_event_emit(
        project=export.project_id,
        event="export.ready",
        data={
            "export": export.pk,
            "project": export.project_id,
            "format": export.format,
            "file_type": export.file_type,
            "row_count": export.row_count,
        },
    )


def export_progress_event(export: Export) -> dict:
    return {
        "type": "export.progress",
        "export_id": export.pk,
        "status": export.status,
        "done": export.progress_done,
        "total": export.progress_total,
        "rows": export.row_count,
        "message": export.message,
    }


def export_progress_send(*, export_id: int) -> None:
    """Tells the `export-<id>` group where the export stands. Call after commit; a channel layer
    that is down costs a log line, never the export."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    export = Export.objects.filter(pk=export_id).first()
    layer = get_channel_layer()
    if export is None or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(f"export-{export_id}", export_progress_event(export))
    except Exception:
        logger.warning("could not send progress of export %s", export_id, exc_info=True)


def export_files_discard(*, file_path: str = "", project_id: int | None = None) -> None:
    """Removes a deleted export's file, or a deleted project's whole export folder; called after
    the deleting transaction commits (see annotation/signals.py). The rows are gone by then, so a
    file that is already missing is fine and one that cannot be removed is only logged."""
    root = Path(settings.EXPORT_DIR).resolve()
    if project_id is not None:
        target = root / str(int(project_id))
    elif file_path:
        target = (root / file_path).resolve()
    else:
        return
    if root not in target.parents:  # never outside EXPORT_DIR, whatever file_path says
        return
    try:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    except OSError:
        logger.exception("could not remove %s of a deleted export", target)
