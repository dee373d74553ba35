"""Export speed and memory on PostgreSQL: a project with 1M annotations exported as DPO, to JSONL and
to Parquet, through the same service the Celery task calls (annotation.services.exports.export_run).

    python bench/export_bench.py                       # 1,000,000 annotations (200,000 items)
    python bench/export_bench.py --items 20000         # smaller, for quick iterations (100k annotations)
    python bench/export_bench.py --annotations 200000  # the same, by annotations
    python bench/export_bench.py --keep                # keep the database for another run
    python bench/export_bench.py --reuse --keep        # export again from the kept database

The data: per item two model candidates (200- and 400-character texts), one compare task answered by
3 annotators and two rate tasks answered by one (5 annotations per item), votes and ratings drawn
by a hash so compare and ratings mostly agree. It is inserted with set-based SQL
(INSERT ... SELECT generate_series), which writes 1M annotations in seconds.

Each export runs in a fresh process, so its peak RSS is the export's alone (Python, Django, pyarrow
and the rows in flight), measured with getrusage; the part of it that is mapped files (shared
libraries) is printed too: on a freshly installed environment it read 30 MB higher until the page
cache was dropped (`sync; echo 1 > /proc/sys/vm/drop_caches`), see rss_file_mb. A large export on
PostgreSQL forks one helper for the later half of the items (annotation/exports/parallel.py): its
CPU time, its peak RSS and the memory only it held (not shared with the export process) are printed
too, and the target is checked against the export process's peak plus the helper's own memory.
Figures: output rows/s, annotations read/s, peak RSS, and the CPU the PostgreSQL backends spent on
the export: with the export's own CPU it says how many rows/s the machine's cores could give this
work at most, and how many PostgreSQL's part alone would allow. Target: >= 50,000 rows/s with peak
RSS under 200 MB, whatever the size.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from queue_bench import cpu_seconds  # bench/ is on the path: the scripts run from there

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/synthlab_bench_export"
ANNOTATIONS_PER_ITEM = 5
TARGET_ROWS_PER_S = 50_000
TARGET_RSS_MB = 200


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_file_mb() -> float:
    """The part of this process's RSS that is mapped files (shared libraries, mostly pyarrow's),
    now. Right after a fresh install it was 30 MB more than after the page cache was dropped
    (the kernel had the new files' pages in large folios and mapped them whole): compare peaks
    only between runs on a page cache in the same state."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _setup_django(database_url: str, data_dir: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["SYNTHLAB_DATA_DIR"] = data_dir
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _admin_url(database_url: str) -> tuple[str, str]:
    base, name = database_url.rsplit("/", 1)
    return f"{base}/postgres", name


def create_database(database_url: str) -> None:
    import psycopg

    admin, name = _admin_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(database_url: str) -> None:
    import psycopg

    admin, name = _admin_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FILL_SQL = """
INSERT INTO annotation_item (id, project_id, external_id, text, prompt, messages, metadata, split, reference,
    is_gold, status, content_hash, created_at, updated_at)
SELECT g, %(project)s, 'item-' || g, '', 'Question ' || g || ': ' || repeat('explain the data pipeline ', 7),
    NULL, '{}', 'train', NULL, false, 'done', md5(g::text), now(), now()
FROM generate_series(1, %(items)s) g;

INSERT INTO annotation_candidate (id, item_id, text, label, source, model, recipe, provenance, scores, parent_id,
    created_by_id, dedupe_key, created_at)
SELECT 2 * g - 1 + k, g, 'Answer ' || (2 * g - 1 + k) || ' ' || repeat('the reviewer keeps the better draft ', 11),
    NULL, 'model', CASE k WHEN 0 THEN 'model-a' ELSE 'model-b' END, 'candidates', '{}', '{}', NULL, NULL, NULL, now()
FROM generate_series(1, %(items)s) g, generate_series(0, 1) k;

INSERT INTO annotation_reviewtask (id, project_id, item_id, mode, candidate_a_id, candidate_b_id, key, overlap,
    annotation_count, status, is_gold, priority, created_at, completed_at)
SELECT 3 * g - 2, %(project)s, g, 'compare', 2 * g - 1, 2 * g, 'compare:' || g, 3, 3, 'done', false, 0, now(), now()
FROM generate_series(1, %(items)s) g
UNION ALL
SELECT 3 * g - 1 + k, %(project)s, g, 'rate', 2 * g - 1 + k, NULL, 'rate:' || g || ':' || k, 1, 1, 'done', false, 0,
    now(), now()
FROM generate_series(1, %(items)s) g, generate_series(0, 1) k;

INSERT INTO annotation_annotation (task_id, annotator_id, mode, value, rating, choice, client_id, duration_ms,
    result_candidate_id, created_at)
SELECT 3 * g - 2, a.id, 'compare', json_build_object('choice', c.choice, 'reason', '')::jsonb, NULL, c.choice,
    gen_random_uuid(), 1000, NULL, now()
FROM generate_series(1, %(items)s) g
CROSS JOIN LATERAL (SELECT id, row_number() OVER (ORDER BY id) AS n FROM auth_user WHERE username LIKE 'bench-ann%%') a
CROSS JOIN LATERAL (SELECT CASE WHEN abs(hashtext(g || ':' || a.n)) %% 10 < 6 THEN 'a'
                                WHEN abs(hashtext(g || ':' || a.n)) %% 10 < 8 THEN 'b'
                                WHEN abs(hashtext(g || ':' || a.n)) %% 10 < 9 THEN 'tie'
                                ELSE 'both_bad' END AS choice) c;

INSERT INTO annotation_annotation (task_id, annotator_id, mode, value, rating, choice, client_id, duration_ms,
    result_candidate_id, created_at)
SELECT 3 * g - 1 + k, %(first_user)s, 'rate', json_build_object('rating', r.rating, 'comment', '')::jsonb, r.rating,
    NULL, gen_random_uuid(), 1000, NULL, now()
FROM generate_series(1, %(items)s) g, generate_series(0, 1) k
CROSS JOIN LATERAL (SELECT CASE k WHEN 0 THEN 3 + abs(hashtext('r' || g)) %% 3
                                  ELSE 1 + abs(hashtext('s' || g)) %% 3 END AS rating) r;
"""


def fill(database_url: str, annotations: int) -> dict:
    """Creates the schema and the project; answers what it made."""
    with tempfile.TemporaryDirectory() as data_dir:
        _setup_django(database_url, data_dir)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection

        from annotation.models import Membership, Role
        from annotation.services.projects import project_create

        call_command("migrate", verbosity=0)
        users = [get_user_model().objects.create_user(f"bench-ann{n}") for n in range(1, 4)]
        admin = get_user_model().objects.create_user("bench-admin")
        project = project_create(
            user=admin, data={"name": "Export bench", "modes": ["rate", "compare"], "overlap": 3}
        )
        for user in users:
            Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
        items = annotations // ANNOTATIONS_PER_ITEM
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for statement in FILL_SQL.split(";\n\n"):
                cursor.execute(statement, {"project": project.pk, "items": items, "first_user": users[0].pk})
            for table in ("annotation_item", "annotation_candidate", "annotation_reviewtask"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
            # VACUUM as autovacuum would have long before anyone exports: it sets the hint bits, so
            # the first export does not pay for writing every page the fill made.
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("SELECT count(*) FROM annotation_annotation")
            (made,) = cursor.fetchone()
        return {
            "project": project.pk,
            "admin": admin.pk,
            "items": items,
            "annotations": made,
            "fill_seconds": round(time.perf_counter() - started, 1),
        }


class BackendCpu:
    """CPU time of the PostgreSQL backends serving the bench database while an export runs (server,
    database and export share this machine). A thread samples pg_stat_activity and /proc every
    50 ms and keeps each backend's latest cumulative CPU, so a backend that exits between two samples
    loses at most 50 ms: the figure is a lower bound."""

    def __init__(self, database_url: str):
        import psycopg

        self.conn = psycopg.connect(database_url, autocommit=True)
        self.own = self.conn.info.backend_pid
        self.name = database_url.rsplit("/", 1)[1]
        self.before: dict[int, float] = self._sample()
        self.latest: dict[int, float] = dict(self.before)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> dict[int, float]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s", [self.name, self.own]
        ).fetchall()
        return {pid: cpu_seconds([pid]) for (pid,) in rows}

    def _keep(self, sample: dict[int, float]) -> None:
        # Cumulative CPU only grows; a backend gone before it was read counts 0 and keeps its last.
        for pid, cpu in sample.items():
            self.latest[pid] = max(cpu, self.latest.get(pid, 0.0))

    def _run(self) -> None:
        while not self.done.wait(0.05):
            self._keep(self._sample())

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self._keep(self._sample())
        self.conn.close()
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.latest.items())


def run_export(database_url: str, project_id: int, admin_id: int, file_type: str) -> dict:
    """Inside a fresh process: one DPO export, timed, with its peak RSS."""
    with tempfile.TemporaryDirectory() as data_dir:
        _setup_django(database_url, data_dir)
        from annotation.models import Export
        from annotation.services.exports import export_run

        baseline = rss_peak_mb()
        export = Export.objects.create(
            project_id=project_id, format="dpo", file_type=file_type, created_by_id=admin_id
        )
        backends = BackendCpu(database_url)
        started, cpu = time.perf_counter(), time.process_time()
        export = export_run(export_id=export.pk)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        database_cpu = backends.stop()
        from django.conf import settings

        from annotation.exports.parallel import LAST_HELPER

        helper = dict(LAST_HELPER)  # the forked helper of a two-process export (empty: one process)
        size = (Path(settings.EXPORT_DIR) / export.file_path).stat().st_size if export.file_path else 0
        return {
            "file_type": file_type,
            "status": export.status,
            "message": export.message,
            "rows": export.row_count,
            "items": export.progress_done,
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "database_cpu_seconds": round(database_cpu, 2),
            "rows_per_s": round(export.row_count / seconds),
            "file_mb": round(size / 2**20, 1),
            "rss_after_setup_mb": round(baseline, 1),
            "peak_rss_mb": round(rss_peak_mb(), 1),
            "rss_file_mb": round(rss_file_mb(), 1),
            "helper_cpu_seconds": round(helper.get("cpu_seconds", 0.0), 2),
            "helper_peak_rss_mb": round(helper.get("peak_rss_mb", 0.0), 1),
            # Memory only the helper held (it shares the rest with the parent it was forked from).
            "helper_private_mb": round(helper.get("private_peak_mb", 0.0), 1),
            "dropped": export.counts.get("dropped"),
            "by_rule": export.counts.get("by_rule"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, help=f"items to make ({ANNOTATIONS_PER_ITEM} annotations each)")
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="export from an existing bench database")
    parser.add_argument("--child", nargs=3, metavar=("PROJECT", "ADMIN", "FILE_TYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.items:
        args.annotations = args.items * ANNOTATIONS_PER_ITEM
    if args.child:
        project, admin, file_type = args.child
        print(json.dumps(run_export(args.database_url, int(project), int(admin), file_type)))
        return

    def child(*argv) -> dict:
        out = subprocess.run(
            [sys.executable, __file__, "--database-url", args.database_url, *argv],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    if not args.reuse:
        create_database(args.database_url)
    try:
        if args.reuse:
            made = json.loads(Path(tempfile.gettempdir(), "export_bench.json").read_text())
        else:
            code = (
                "import json, sys; sys.path.insert(0, 'bench'); import export_bench as b; "
                f"print(json.dumps(b.fill({args.database_url!r}, {args.annotations})))"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
            )
            made = json.loads(out.stdout.strip().splitlines()[-1])
            Path(tempfile.gettempdir(), "export_bench.json").write_text(json.dumps(made))
        print(
            f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other work slows the figures)"
        )
        print(
            f"PostgreSQL: {made['annotations']:,} annotations on {made['items']:,} items "
            f"(inserted in {made.get('fill_seconds', '?')} s)"
        )
        results = []
        for file_type in ("jsonl", "parquet"):
            result = child("--child", str(made["project"]), str(made["admin"]), file_type)
            results.append(result)
            cpu = result["cpu_seconds"] + result["helper_cpu_seconds"]
            database_cpu = result["database_cpu_seconds"]
            print(
                f"DPO {file_type:8s}: {result['rows']:,} rows from {result['items']:,} items in {result['seconds']} s"
                f" = {result['rows_per_s']:,} rows/s, {round(made['annotations'] / result['seconds']):,} annotations/s;"
                f" export process CPU {result['cpu_seconds']} s + helper {result['helper_cpu_seconds']} s"
                f" ({round(result['rows'] / max(cpu, 0.01)):,} rows per CPU second);"
                f" file {result['file_mb']} MB; peak RSS {result['peak_rss_mb']} MB"
                f" (after Django setup {result['rss_after_setup_mb']} MB; mapped files at the end"
                f" {result['rss_file_mb']} MB); {result['status']}"
            )
            # The machine's CPUs are shared by PostgreSQL and the export: rows / (all CPU seconds /
            # cores) is the most this work could reach with every core busy all the time, and
            # rows / (PostgreSQL's CPU seconds / cores) the most any Python side could reach.
            cores = os.cpu_count() or 1
            print(
                f"    PostgreSQL backends CPU {database_cpu} s (at least); with {cores} cores busy all the time"
                f" this work allows at most {round(result['rows'] * cores / max(cpu + database_cpu, 0.01)):,} rows/s,"
                f" and PostgreSQL's part alone {round(result['rows'] * cores / max(database_cpu, 0.01)):,} rows/s"
            )
            if result["helper_peak_rss_mb"]:
                print(
                    f"    forked helper (the later half of the items): peak RSS {result['helper_peak_rss_mb']} MB, of"
                    f" which its own (not shared with the export process) at most {result['helper_private_mb']} MB;"
                    f" export process + helper's own: {result['peak_rss_mb'] + result['helper_private_mb']:.1f} MB"
                )
            print(f"    rules {result['by_rule']}; left out {result['dropped']}")
        print(
            f"Summary ({made['annotations']:,} annotations; target >= {TARGET_ROWS_PER_S:,} rows/s, peak RSS < {TARGET_RSS_MB} MB):"
        )
        for result in results:
            # Memory counted honestly for a two-process export: the export process's peak plus what
            # only its helper held.
            memory = result["peak_rss_mb"] + result["helper_private_mb"]
            verdict = (
                "meets" if result["rows_per_s"] >= TARGET_ROWS_PER_S and memory < TARGET_RSS_MB else "misses"
            )
            print(
                f"  DPO {result['file_type']:8s} {result['rows_per_s']:>9,} rows/s   peak RSS {result['peak_rss_mb']:6.1f} MB"
                f" (+ helper's own {result['helper_private_mb']:.1f} MB)   {verdict} the target"
            )
    finally:
        if not args.keep:
            drop_database(args.database_url)


if __name__ == "__main__":
    main()
