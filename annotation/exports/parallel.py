"""Large exports on PostgreSQL in two processes.

Building rows is Python work bound to one core; the machine has more. The export's process keeps
the first part of the items (by id; about half, see PARENT_SHARE) and forks one helper for the
rest. Both read the same snapshot (the parent's REPEATABLE READ transaction, exported with
pg_export_snapshot() and imported by the helper with SET TRANSACTION SNAPSHOT), so the two parts
are one consistent read.
The helper writes its rows to a part file (JSONL lines, or the Parquet row groups as an Arrow IPC
stream) and hands back its tallies; the parent appends the part after its own rows, following it
as it grows while the helper still writes it, so the file, its rows, their order and the counts
are those of a one-process export.

The helper is a fork of the worker, so it starts at once and shares its memory (Django, pyarrow)
until it writes to it. It never touches the parent's database connections (copies of the same
sockets): it opens its own, without the pool, and leaves with os._exit (no clean-up code runs on
the inherited objects).
"""

from __future__ import annotations

import json
import mmap
import os
import re
import resource
import select
import signal
import struct
import time
import traceback
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.utils import load_backend

from ..models import Project
from .rows import RowContext, export_rows
from .spec import ExportSpec
from .writers import PART_WRITERS

_SNAPSHOT = re.compile(r"^[0-9A-Fa-f-]+$")
# The last helper's CPU seconds and memory (peak RSS, and at its end the memory only it held), for
# bench/export_bench.py: the export's process measures only itself.
LAST_HELPER: dict = {}
_PROGRESS = struct.Struct("qq")  # the helper's items and rows so far
# The export process's share of the items, by file type. Parquet: it encodes every row group, the
# helper's too (the helper only converts its rows to Arrow), so it takes fewer items and starts on
# the helper's groups while the helper still makes them: 1M annotations in a median 4.37 s instead
# of 4.48 s (8 interleaved runs each). JSONL: its appending is copying, which can only start once
# its own rows are written; a smaller share left its process and PostgreSQL backend idle for
# longer than the copy took (0.49: no faster; 0.47 and 0.44: slower).
PARENT_SHARE = {"jsonl": 0.5, "parquet": 0.48, "hf": 0.48}


def parallel_split(project: Project, spec: ExportSpec, total: int, *, snapshot: bool) -> int | None:
    """The last item id of the parent's part (PARENT_SHARE of the items) when this export runs in
    two processes, else None:
    PostgreSQL inside the export's own read snapshot, a file type in
    SYNTHLAB_EXPORT_PARALLEL_FILE_TYPES, at least SYNTHLAB_EXPORT_PARALLEL_MIN_ITEMS items (below
    that the fork costs more than it saves), and more than one core.

    Every file type by default (a `datasets` folder's rows are Parquet until the folder is made,
    after the helper is gone). Memory stays under the 200 MB an export may take: the export
    process's peak plus what only the helper holds (its heap and the pages it copies from the
    parent) was 101 + 36 MB for JSONL (it reads 2,000 items per chunk) and 144 + 31 MB for Parquet
    (bench/export_bench.py, 1M annotations)."""
    least = getattr(settings, "SYNTHLAB_EXPORT_PARALLEL_MIN_ITEMS", 20_000)
    file_types = getattr(settings, "SYNTHLAB_EXPORT_PARALLEL_FILE_TYPES", ("jsonl", "parquet", "hf"))
    if (
        not snapshot
        or connection.vendor != "postgresql"
        or spec.file_type not in file_types
        or spec.file_type not in PART_WRITERS
        or total < max(least, 2)
        or (os.cpu_count() or 1) < 2
        or not hasattr(os, "fork")
    ):
        return None
    from .rows import _items_query

    ids = _items_query(project, spec).order_by("id").values_list("id", flat=True)
    mine = min(max(round(total * PARENT_SHARE.get(spec.file_type, 0.5)), 1), total - 1)
    return list(ids[mine - 1 : mine])[0]


class _Tallies:
    """What progress reports read (items, rows): the parent's context plus the helper's counts."""

    def __init__(self, ctx: RowContext, shared: mmap.mmap):
        self.ctx, self.shared = ctx, shared

    @property
    def items(self) -> int:
        return self.ctx.items + _PROGRESS.unpack_from(self.shared)[0]

    @property
    def rows(self) -> int:
        return self.ctx.rows + _PROGRESS.unpack_from(self.shared)[1]


def export_parallel(
    project: Project,
    spec: ExportSpec,
    ctx: RowContext,
    writer,
    *,
    split_id: int,
    part: Path,
    on_progress: Callable | None = None,
) -> None:
    """Writes every row of the export through `writer`: items up to `split_id` here, the rest in
    a forked helper whose part is appended; `ctx` ends with the tallies of both. Call inside the
    export's read snapshot (services.exports._read_snapshot) on PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cursor.fetchone()
    part.write_bytes(b"")  # there before the helper starts: this process follows it from the start
    shared = mmap.mmap(-1, _PROGRESS.size)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper
        os.close(read_end)
        _helper(project, spec, ctx, split_id, part, snapshot, shared, write_end)  # never returns
    os.close(write_end)
    finished = False
    try:
        report = None if on_progress is None else (lambda _: on_progress(_Tallies(ctx, shared)))
        for row in export_rows(project, spec, ctx, on_progress=report, ids=(None, split_id)):
            writer.write(row)
        # The helper's part is appended as it writes it; meanwhile progress is still reported (its
        # rows, and the heartbeat a stale-run takeover looks at).
        try:
            writer.append(part, _Growing(read_end, report, ctx))
            failure = None
        except Exception as exc:  # a part cut short: the helper's answer says why, when it has one
            if not select.select([read_end], [], [], 0)[0]:
                raise
            failure = exc
        with os.fdopen(read_end, "rb") as answer:
            read_end = None
            message = answer.read()
        _, status = os.waitpid(pid, 0)
        finished = True
        result = json.loads(message) if message else {"error": f"the helper process ended ({status})"}
        if "error" in result:
            raise RuntimeError(f"the second half of the export failed: {result['error']}") from failure
        if failure is not None:
            raise failure
        LAST_HELPER.clear()
        LAST_HELPER.update(result.pop("helper", {}))
        ctx.merge(result)
        if on_progress is not None:
            on_progress(ctx)
    finally:
        if read_end is not None:
            os.close(read_end)
        if not finished:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        part.unlink(missing_ok=True)
        shared.close()


class _Growing:
    """Whether the helper is still writing its part (writers.Growing): it is until its answer
    comes (it answers after closing the part, or the pipe ends when it dies). Reports progress
    every half second meanwhile."""

    def __init__(self, answer_fd: int, report: Callable | None, ctx: RowContext):
        self.answer_fd, self.report, self.ctx = answer_fd, report, ctx
        self.reported = time.monotonic()

    def __call__(self, timeout: float) -> bool:
        if self.report is not None and time.monotonic() - self.reported >= 0.5:
            self.report(self.ctx)
            self.reported = time.monotonic()
        return not select.select([self.answer_fd], [], [], timeout)[0]


def _helper(project, spec, parent_ctx, split_id, part, snapshot, shared, answer_fd) -> None:
    code = 1
    try:
        _die_with_parent()
        db = _own_connection()
        try:
            if not _SNAPSHOT.match(snapshot):
                raise ValueError(f"unexpected snapshot id {snapshot!r}")
            db.set_autocommit(False)
            with db.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            ctx = RowContext(project=project, spec=spec, eval_hashes=parent_ctx.eval_hashes)
            writer = PART_WRITERS[spec.file_type](part, _schema(spec))

            private = [0.0]

            def progress(ctx: RowContext) -> None:
                _PROGRESS.pack_into(shared, 0, ctx.items, ctx.rows)
                private[0] = max(private[0], _private_mb())

            for row in export_rows(project, spec, ctx, on_progress=progress, ids=(split_id, None), db=db):
                writer.write(row)
            writer.close()
            db.rollback()
        finally:
            db.close()
        usage = _own_usage() | {"private_peak_mb": max(private[0], _private_mb())}
        message = json.dumps({**ctx.tallies(), "helper": usage}).encode()
        code = 0
    except BaseException as exc:  # told to the parent, which fails the export with it
        message = json.dumps(
            {"error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc()}
        ).encode()
    try:
        with os.fdopen(answer_fd, "wb") as answer:
            answer.write(message)
    finally:
        os._exit(code)


def _die_with_parent() -> None:
    """Linux: the helper is killed when the export's process dies (a worker killed mid-export),
    instead of finishing a part nobody will append."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _own_usage() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def _private_mb() -> float:
    """Memory only this process holds (pages it wrote since the fork, and its own), Linux only."""
    try:
        lines = Path("/proc/self/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0.0
    kb = 0
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("Private_Clean", "Private_Dirty"):
            kb += int(value.split()[0])
    return kb / 1024


def _schema(spec: ExportSpec):
    from .rows import export_schema

    return export_schema(spec) if spec.file_type != "jsonl" else None


def _own_connection():
    """A new connection for the helper with the default database's settings, outside the pool
    (the pool's connections and threads belong to the parent)."""
    settings_dict = deepcopy(connections[DEFAULT_DB_ALIAS].settings_dict)  # as in use (tests rename it)
    settings_dict["OPTIONS"] = {k: v for k, v in settings_dict.get("OPTIONS", {}).items() if k != "pool"}
    settings_dict["CONN_MAX_AGE"] = 0
    backend = load_backend(settings_dict["ENGINE"])
    return backend.DatabaseWrapper(settings_dict, "export-helper")
