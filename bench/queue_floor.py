"""The floor under bench/queue_bench.py: the same server, client loop and machine, with the queue's
work taken out. It answers what the queue's targets can ask of this machine at all.

    python bench/queue_floor.py
    python bench/queue_floor.py --annotators 1 50 --workers 3

It starts `uvicorn synthlab.asgi:application --workers N` exactly as queue_bench does (SynthLab's
settings, middleware, ASGI handler, database pool, PostgreSQL), but with the two queue URLs answered
by views that do no queue work (bench/queue_floor_urls.py), one server per kind:

- django: a plain Django view, no database;
- query: a plain Django view that makes the one indexed query every API request makes before its own
  work (the caller's token and user);
- drf: REST framework views with the API's token authentication and JSON rendering (that same query);
- queue: for comparison, the real queue (SynthLab's own URLs) on a fresh project of --tasks rate
  tasks per run, overlap 2, verified as queue_bench verifies it; so the floors and the queue are
  measured in one window (this machine's speed moves by about 1.5x between moments).

The same annotator clients as queue_bench (keep-alive HTTP, GET next then POST an answer, in a loop,
spread over client processes) drive 1, 10 and 50 annotators, and it prints next/submit latency
p50/p95/p99, answers per second and CPU per answer, then the queue's targets (next p50 <= 5 ms,
submit p50 <= 3 ms, p99 < 100 ms at 50 annotators) against each floor. Whatever a floor misses, the
real queue (which adds its own statements to every request) cannot meet on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import queue_bench as qb  # noqa: E402

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/synthlab_bench_queue_floor"
KINDS = ("django", "query", "drf", "queue")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--answers", type=int, default=2000, help="answers per run")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks in each of the queue's projects")
    parser.add_argument("--workers", type=int, default=3, help="uvicorn worker processes")
    parser.add_argument("--client-processes", type=int, default=4)
    return parser.parse_args()


def measure(kind: str, env: dict, people, args) -> list[dict]:
    admin, annotators_all = people
    tokens = [token for _, token in annotators_all]
    real = kind == "queue"
    if real:
        env = {**env, "DJANGO_SETTINGS_MODULE": "synthlab.settings.base"}
    server, port = qb.server_start({**env, "QUEUE_FLOOR": kind}, args.workers)
    rows = []

    def project(size: int, overlap: int, label: str):
        # The floors ignore the project; the queue gets a fresh one per run, as in queue_bench.
        if not real:
            return None
        return qb.project_load(
            admin=admin, annotators=annotators_all, size=size, overlap=overlap, label=label
        )

    try:
        warm = project(500, 1, "floor warm-up")
        warm_run = qb.Run(port=port, project_id=warm.pk if warm else 1, tokens=tokens, quota=300)
        warm_run.go(min(20, len(tokens)), args.client_processes)
        for annotators in args.annotators:
            loaded = project(args.tasks, 2, f"floor {annotators}")
            run = qb.Run(port=port, project_id=loaded.pk if loaded else 1, tokens=tokens, quota=args.answers)
            seconds, server_cpu, database_cpu = run.measured(
                annotators, args.client_processes, server=server, database_url=args.database_url
            )
            answers = max(len(run.submit_ms), 1)
            row = {
                "kind": kind,
                "annotators": annotators,
                "next": [qb.percentile(run.next_ms, q) for q in (50, 95, 99)],
                "submit": [qb.percentile(run.submit_ms, q) for q in (50, 95, 99)],
                "per_s": len(run.submit_ms) / seconds,
                "server_ms": server_cpu / answers * 1000,
                "database_ms": database_cpu / answers * 1000,
                "client_ms": run.client_cpu_s / answers * 1000,
                # The queue is checked as queue_bench checks it (no slot given twice, exact overlap).
                "errors": qb.verify(run, loaded, 2) if real else run.errors + run.refused,
            }
            rows.append(row)
            print(
                f"{kind:>7}  {annotators:>3} annotators  "
                f"next p50/p95/p99 {row['next'][0]:6.2f} {row['next'][1]:6.2f} {row['next'][2]:6.2f} ms  "
                f"submit {row['submit'][0]:6.2f} {row['submit'][1]:6.2f} {row['submit'][2]:6.2f} ms  "
                f"{row['per_s']:6.0f} answers/s  CPU per answer: server {row['server_ms']:.2f}, "
                f"PostgreSQL {row['database_ms']:.2f}, client {row['client_ms']:.2f} ms  "
                f"load {os.getloadavg()[0]:.1f}{'  ERRORS: ' + row['errors'][0] if row['errors'] else ''}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def verdicts(rows: list[dict]) -> None:
    print(
        "\nThe queue's targets against each floor and the queue itself (a floor that misses a target leaves"
        " the queue no way to meet it here):"
    )
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = {r["annotators"]: r for r in rows if r["kind"] == kind}
        parts = []
        if 1 in mine:
            one = mine[1]
            parts.append(f"next p50 {one['next'][0]:.2f} ms ({'<=' if one['next'][0] <= 5 else '>'} 5)")
            parts.append(f"submit p50 {one['submit'][0]:.2f} ms ({'<=' if one['submit'][0] <= 3 else '>'} 3)")
        if 50 in mine:
            p99 = max(mine[50]["next"][2], mine[50]["submit"][2])
            parts.append(f"p99 at 50 annotators {p99:.0f} ms ({'<' if p99 < 100 else '>='} 100)")
        print(f"  {kind:>7}: " + "; ".join(parts))


def main() -> None:
    args = parse_args()
    env = {
        "DJANGO_SETTINGS_MODULE": "bench.queue_floor_settings",
        "DATABASE_URL": args.database_url,
        "SYNTHLAB_DATA_DIR": tempfile.mkdtemp(prefix="synthlab-queue-floor-"),
        "SECRET_KEY": "queue-floor-" + uuid.uuid4().hex,
        "DEBUG": "0",
    }
    os.environ.pop("REDIS_URL", None)
    qb.database_recreate(args.database_url)
    sys.path.insert(0, str(qb.ROOT))
    qb.django_setup(env)
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0)
    people = qb.users_create(max(args.annotators))
    connections.close_all()
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    started = time.perf_counter()
    rows = []
    try:
        for kind in args.kinds:
            rows += measure(kind, env, people, args)
    finally:
        qb.database_drop(args.database_url)
    verdicts(rows)
    print(
        f"\nserver: uvicorn synthlab.asgi:application --workers {args.workers} with SynthLab's settings and the"
        f" floor's URLs (the queue: its own); PostgreSQL; {os.cpu_count()} CPUs shared by server, database and client; {args.client_processes}"
        f" client processes; {time.perf_counter() - started:.0f} s"
    )
    if any(r["errors"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
