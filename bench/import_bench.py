"""Import speed and memory: items/s for 10k and 100k generated items (500 characters each), read
from a .jsonl file through the same service the API and the import page call
(annotation.services.imports.items_import_file), and the memory the import takes.

    python bench/import_bench.py                      # SQLite (temp folder) and PostgreSQL
    python bench/import_bench.py --database-url sqlite
    python bench/import_bench.py --database-url postgres://postgres@127.0.0.1:5432/synthlab_bench_import

Each database runs in its own process (Django settings are fixed per process) with a temporary
SYNTHLAB_DATA_DIR; the PostgreSQL database is created, migrated and dropped by the benchmark.
Memory: peak RSS of the process after each import (it should not grow with the file) and the
peak of Python allocations during a separate traced run (tracemalloc slows the import, so that
run is not timed). Target: >= 40,000 items/s on both databases.
"""

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/synthlab_bench_import"
WORDS = [
    "the",
    "model",
    "answers",
    "a",
    "question",
    "about",
    "data",
    "with",
    "care",
    "and",
    "people",
    "review",
    "each",
    "draft",
    "before",
    "it",
    "becomes",
    "training",
    "material",
    "for",
    "the",
    "next",
    "round",
    "of",
    "fine",
    "tuning",
    "while",
    "labels",
    "stay",
    "consistent",
    "across",
    "annotators",
]


def write_items(path: Path, count: int, chars: int, *, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for n in range(count):
            text = " ".join(rng.choices(WORDS, k=chars // 4))[:chars].ljust(chars, ".")
            out.write(json.dumps({"external_id": f"item-{n}", "text": text, "metadata": {"n": n}}) + "\n")


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    """Runs inside a process whose environment names the database."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from annotation.services.imports import BATCH_SIZE, items_import_file
    from annotation.services.projects import project_create

    args.batch_size = args.batch_size or BATCH_SIZE
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench-pw-123")
    work = Path(os.environ["SYNTHLAB_DATA_DIR"])
    label = f"{connection.vendor} ({'embedded' if connection.vendor == 'sqlite' else 'server'})"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n== {label}: {args.chars}-character items, batch size {args.batch_size}; "
        f"{os.cpu_count()} CPUs, load average {load} (wall-clock figures drop when others share the CPUs)"
    )

    def server_cpu() -> float:
        """CPU seconds of this connection's PostgreSQL backend (same machine), 0 on SQLite."""
        if connection.vendor != "postgresql":
            return 0.0
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run(count: int, *, name: str, project=None, traced=False, task_type="instruction", modes=None):
        path = work / f"items-{count}.jsonl"
        if not path.exists():
            write_items(path, count, args.chars)
        if project is None:
            data = {"name": name, "task_type": task_type, "modes": modes or ["rate"]}
            if task_type == "classification":
                data["labels"] = ["positive", "negative"]
            project = project_create(user=user, data=data)
        if traced:
            tracemalloc.start()
        server_before = server_cpu()
        started, cpu_started = time.perf_counter(), time.process_time()
        with open(path, "rb") as file:
            result = items_import_file(
                project=project, file=file, filename=path.name, user=user, batch_size=args.batch_size
            )
        seconds = time.perf_counter() - started
        out = {
            "project": project,
            "result": result,
            "seconds": seconds,
            "rate": count / seconds,
            "cpu": time.process_time() - cpu_started,
            "server_cpu": server_cpu() - server_before,
            "file_mb": path.stat().st_size / 1048576,
        }
        if traced:
            out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1048576
            tracemalloc.stop()
        return out

    def show(what: str, r: dict, extra: str = "") -> None:
        server = f" + db server {r['server_cpu']:5.2f} s" if connection.vendor == "postgresql" else ""
        print(
            f"{what:34s} {r['seconds']:6.2f} s  {r['rate']:>8,.0f} items/s   "
            f"(cpu: python {r['cpu']:5.2f} s{server}){extra}"
        )

    for count in args.sizes:
        r = run(count, name=f"bench {count}")
        show(
            f"import {count:,} new ({r['file_mb']:.0f} MB file)",
            r,
            f"   peak RSS so far {rss_peak_mb():4.0f} MB",
        )
        assert r["result"] == {"created": count, "updated": 0}, r["result"]
        if count == args.sizes[0]:
            again = run(count, name="", project=r["project"])
            assert again["result"] == {"created": 0, "updated": count}, again["result"]
            show(f"re-import {count:,} (all updates)", again)
            show(
                f"import {count:,} + label tasks",
                run(count, name=f"bench labels {count}", task_type="classification", modes=["label"]),
                "   (one review task per item)",
            )
    for count in args.sizes:
        r = run(count, name=f"traced {count}", traced=True)
        print(
            f"traced import of {count:,} items ({r['file_mb']:.0f} MB file): "
            f"peak Python allocations {r['traced_peak_mb']:.1f} MB"
        )


def pg_admin(url: str, sql: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.format(name=name))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="'sqlite' or a postgres:// URL; default: both")
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated item counts")
    parser.add_argument("--chars", type=int, default=500, help="characters per item text")
    parser.add_argument("--batch-size", type=int, default=None, help="rows per write batch")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.child:
        child(args)
        return
    targets = [args.database_url] if args.database_url else ["sqlite", DEFAULT_PG]
    failed = False
    for target in targets:
        work = tempfile.mkdtemp(prefix="synthlab-import-bench-")
        env = {**os.environ, "SYNTHLAB_DATA_DIR": work, "DJANGO_SETTINGS_MODULE": "synthlab.settings.base"}
        env.pop("DEBUG", None)
        env.pop("REDIS_URL", None)
        is_pg = target.startswith("postgres")
        if is_pg:
            env["DATABASE_URL"] = target
            pg_admin(target, 'DROP DATABASE IF EXISTS "{name}"')
            pg_admin(target, 'CREATE DATABASE "{name}"')
        else:
            env.pop("DATABASE_URL", None)
        command = [sys.executable, __file__, "--child", "--sizes", ",".join(map(str, args.sizes))]
        command += ["--chars", str(args.chars)]
        if args.batch_size:
            command += ["--batch-size", str(args.batch_size)]
        try:
            failed |= subprocess.run(command, env=env, cwd=ROOT).returncode != 0
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if is_pg:
                pg_admin(target, 'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
