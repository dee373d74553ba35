"""Review queue under load, over real HTTP: next-task and submit latency, throughput, and a check
that no slot was handed out twice.

    python bench/queue_bench.py
    python bench/queue_bench.py --sizes 10000 100000 --annotators 1 10 50 --workers 3 --client-processes 4
    python bench/queue_bench.py --redis redis://127.0.0.1:6379/3     # Channels events through Redis

What it does:

1. Creates the PostgreSQL database `synthlab_bench_queue` (dropped and made afresh; --database-url
   to change), migrates it, and for every (size, annotators) pair loads a fresh project of `size`
   rate tasks (one item, one candidate, one task each; tables grow with every project, as in a
   long-lived install). ANALYZE runs after loading.
2. Starts `uvicorn synthlab.asgi:application --workers N` on 127.0.0.1 (production settings
   otherwise: DEBUG off, no access log), with the same DATABASE_URL.
3. Drives `annotators` clients, each a thread with its own keep-alive HTTP connection and its own
   token, spread over --client-processes processes (one Python process with 50 threads would
   measure its own GIL queueing as server latency):
   GET /api/v1/projects/{id}/tasks/next/?mode=rate, then POST /api/v1/tasks/{id}/annotations/,
   in a loop, until `--tasks` answers were stored for the run (bounded) or the queue is empty.
4. Prints next and submit latency (p50/p95/p99, milliseconds, measured by the client around each
   request), answers per second, and verifies: every next-task was answered with 201 (a refused
   submit would mean a slot was handed out twice), no annotator got a task twice, no task was
   handed to more than `overlap` annotators, and in the database every task has exactly as many
   annotations as its annotation_count, from distinct annotators, never more than its overlap.
   Per run also the CPU used per answer (one next + one submit) by the server processes, by the
   PostgreSQL backends of the bench database and by the client processes, and the load average.

Only loopback traffic. Targets (one annotator): next p50 <= 5 ms and submit p50 <= 3 ms, flat from
10k to 100k tasks; with 50 concurrent annotators p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/synthlab_bench_queue"
PASSWORD = "bench-password-123"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--redis", default="", help="REDIS_URL for the server (Channels layer); default none")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument(
        "--tasks",
        type=int,
        nargs="+",
        default=[1000, 2000, 3000],
        help="answers per run, per annotators value",
    )
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3, help="uvicorn worker processes")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="load-client processes the annotators are spread over (threads inside each)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return parser.parse_args()


# --- Database and data -----------------------------------------------------------------------------


def database_recreate(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_setup(env: dict) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def users_create(count: int):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    admin = user_model.objects.create_user("bench-admin", password=PASSWORD)
    annotators = []
    for n in range(count):
        user = user_model.objects.create_user(f"annotator{n:03d}", password=PASSWORD)
        annotators.append((user, Token.objects.create(user=user).key))
    return admin, annotators


def project_load(*, admin, annotators, size: int, overlap: int, label: str):
    """A project of `size` rate tasks, written in bulk (the rows review_tasks_sync would make)."""
    from django.db import connection

    from annotation.models import Candidate, Item, ItemStatus, Membership, ReviewTask, Role
    from annotation.services.projects import project_create

    project = project_create(
        user=admin,
        data={"name": f"Bench {label}", "task_type": "instruction", "modes": ["rate"], "overlap": overlap},
    )
    Membership.objects.bulk_create(
        [Membership(project=project, user=user, role=Role.ANNOTATOR) for user, _ in annotators]
    )
    batch = 5000
    for start in range(0, size, batch):
        count = min(batch, size - start)
        items = Item.objects.bulk_create(
            [
                Item(
                    project=project,
                    prompt=f"Question {start + n}: explain step {n} of the process.",
                    status=ItemStatus.IN_REVIEW,
                )
                for n in range(count)
            ]
        )
        candidates = Candidate.objects.bulk_create(
            [
                Candidate(item=item, text=f"Answer to {item.prompt} " * 4, model="bench-model")
                for item in items
            ]
        )
        ReviewTask.objects.bulk_create(
            [
                ReviewTask(
                    project=project,
                    item=item,
                    mode="rate",
                    candidate_a=cand,
                    key=f"rate:c{cand.pk}",
                    overlap=overlap,
                )
                for item, cand in zip(items, candidates, strict=True)
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project


# --- Server ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_start(env: dict, workers: int):
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "synthlab.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/projects/")
            if conn.getresponse().status in (200, 401):
                return process, port
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("The server did not start within 60 s.")


# --- Load ------------------------------------------------------------------------------------------


class Run:
    """One measured run: `annotators` keep-alive HTTP clients spread over `processes` client
    processes (threads inside each), sharing one quota of answers."""

    def __init__(self, *, port: int, project_id: int, tokens: list[str], quota: int):
        self.port, self.project_id, self.tokens, self.quota = port, project_id, tokens, quota
        self.next_ms: list[float] = []
        self.submit_ms: list[float] = []
        self.served: dict[int, list[str]] = defaultdict(list)
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.client_cpu_s = 0.0

    def _annotator(self, index: int, claim_quota, out: dict, lock: threading.Lock) -> None:
        token = self.tokens[index]
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        next_path = f"/api/v1/projects/{self.project_id}/tasks/next/?mode=rate"
        for _ in range(self.quota + 1):  # bounded: never more cycles than the run's answers
            if not claim_quota():
                break
            started = time.perf_counter()
            conn.request("GET", next_path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            next_ms = (time.perf_counter() - started) * 1000
            if response.status == 204:
                break
            if response.status != 200:
                with lock:
                    out["errors"].append(f"next {response.status}: {body[:200]!r}")
                break
            task = json.loads(body)
            payload = json.dumps(
                {"value": {"rating": 1 + task["id"] % 5}, "client_id": str(uuid.uuid4()), "duration_ms": 1500}
            )
            started = time.perf_counter()
            conn.request("POST", f"/api/v1/tasks/{task['id']}/annotations/", body=payload, headers=headers)
            response = conn.getresponse()
            body = response.read()
            submit_ms = (time.perf_counter() - started) * 1000
            with lock:
                out["next_ms"].append(next_ms)
                out["submit_ms"].append(submit_ms)
                out["served"].append((task["id"], token))
                if response.status != 201:
                    out["refused"].append(f"{response.status}: {body[:200]!r}")
        conn.close()

    def _process(self, indices: list[int], counter, result_pipe) -> None:
        """One client process: a thread per annotator; sends its measurements back."""

        def claim_quota() -> bool:
            with counter.get_lock():
                if counter.value >= self.quota:
                    return False
                counter.value += 1
                return True

        out = {"next_ms": [], "submit_ms": [], "served": [], "refused": [], "errors": []}
        lock = threading.Lock()
        threads = [
            threading.Thread(target=self._annotator, args=(i, claim_quota, out, lock)) for i in indices
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        out["cpu_s"] = time.process_time()
        result_pipe.send(out)
        result_pipe.close()

    def measured(
        self, annotators: int, processes: int, *, server, database_url: str
    ) -> tuple[float, float, float]:
        """go(), and the CPU seconds the server's processes and the database's backends used
        meanwhile: (seconds, server CPU, database CPU)."""
        server_pids, backends = process_tree(server.pid), database_backends(database_url)
        server_cpu, database_cpu = cpu_seconds(server_pids), cpu_seconds(backends)
        seconds = self.go(annotators, processes)
        # Backends opened during the run (the pools grow under load) count from zero.
        backends = sorted(set(backends) | set(database_backends(database_url)))
        return seconds, cpu_seconds(server_pids) - server_cpu, cpu_seconds(backends) - database_cpu

    def go(self, annotators: int, processes: int) -> float:
        context = multiprocessing.get_context("fork")
        counter = context.Value("i", 0)
        processes = max(1, min(processes, annotators))
        groups = [list(range(annotators))[n::processes] for n in range(processes)]
        pipes, children = [], []
        started = time.perf_counter()
        for group in groups:
            receiver, sender = context.Pipe(duplex=False)
            child = context.Process(target=self._process, args=(group, counter, sender))
            child.start()
            pipes.append(receiver)
            children.append(child)
        results = [receiver.recv() for receiver in pipes]
        elapsed = time.perf_counter() - started
        for child in children:
            child.join()
        for out in results:
            self.next_ms += out["next_ms"]
            self.submit_ms += out["submit_ms"]
            for task_id, token in out["served"]:
                self.served[task_id].append(token)
            self.refused += out["refused"]
            self.errors += out["errors"]
            self.client_cpu_s += out["cpu_s"]
        return elapsed


# --- CPU accounting --------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            for child in handle.read().split():
                pids += process_tree(int(child))
    except OSError:
        pass
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (Linux /proc); those that are gone count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def database_backends(url: str) -> list[int]:
    """The PostgreSQL backends connected to the bench database (the server's pooled connections)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [name]
        ).fetchall()
    return [row[0] for row in rows]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def verify(run: Run, project, overlap: int) -> list[str]:
    from django.db.models import Count

    from annotation.models import Annotation, ReviewTask

    problems = []
    if run.refused:
        problems.append(f"{len(run.refused)} submits refused, first: {run.refused[0]}")
    if run.errors:
        problems.append(f"{len(run.errors)} errors, first: {run.errors[0]}")
    for task_id, tokens in run.served.items():
        if len(tokens) != len(set(tokens)):
            problems.append(f"task {task_id} was given twice to one annotator")
        if len(set(tokens)) > overlap:
            problems.append(f"task {task_id} was given to {len(set(tokens))} annotators (overlap {overlap})")
    per_task = {
        task_id: (n, people)
        for task_id, n, people in Annotation.objects.filter(task__project=project)
        .values_list("task_id")
        .annotate(n=Count("pk"), people=Count("annotator", distinct=True))
        .values_list("task_id", "n", "people")
    }
    for task_id, stored_count, status in ReviewTask.objects.filter(project=project).values_list(
        "pk", "annotation_count", "status"
    ):
        n, people = per_task.get(task_id, (0, 0))
        if n != stored_count or n > overlap or people != n:
            problems.append(f"task {task_id}: {n} annotations, count {stored_count}, {people} people")
        if (status == "done") != (n == overlap):
            problems.append(f"task {task_id}: status {status} with {n} of {overlap} annotations")
    stored = sum(n for n, _ in per_task.values())
    if stored != len(run.submit_ms) - len(run.refused):
        problems.append(f"{stored} annotations stored, {len(run.submit_ms)} submitted")
    return problems


def main() -> None:
    args = parse_args()
    if len(args.tasks) < len(args.annotators):
        args.tasks += [args.tasks[-1]] * (len(args.annotators) - len(args.tasks))
    data_dir = tempfile.mkdtemp(prefix="synthlab-queue-bench-")
    env = {
        "DJANGO_SETTINGS_MODULE": "synthlab.settings.base",
        "DATABASE_URL": args.database_url,
        "SYNTHLAB_DATA_DIR": data_dir,
        "SECRET_KEY": "queue-bench-" + uuid.uuid4().hex,
        "DEBUG": "0",
    }
    if args.redis:
        env["REDIS_URL"] = args.redis
    else:
        os.environ.pop("REDIS_URL", None)
    database_recreate(args.database_url)
    django_setup(env)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    admin, annotators = users_create(max(args.annotators))
    tokens = [token for _, token in annotators]

    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    server, port = server_start(env, args.workers)
    rows = []
    try:
        warm = project_load(admin=admin, annotators=annotators, size=500, overlap=1, label="warm-up")
        Run(port=port, project_id=warm.pk, tokens=tokens, quota=400).go(
            min(40, len(tokens)), args.client_processes
        )
        for size in args.sizes:
            for annotators_n, quota in zip(args.annotators, args.tasks, strict=False):
                started = time.perf_counter()
                project = project_load(
                    admin=admin,
                    annotators=annotators,
                    size=size,
                    overlap=args.overlap,
                    label=f"{size}-{annotators_n}",
                )
                load_s = time.perf_counter() - started
                run = Run(port=port, project_id=project.pk, tokens=tokens, quota=quota)
                seconds, server_cpu, database_cpu = run.measured(
                    annotators_n, args.client_processes, server=server, database_url=args.database_url
                )
                load = os.getloadavg()[0]
                problems = verify(run, project, args.overlap)
                rows.append(
                    {
                        "tasks": size,
                        "annotators": annotators_n,
                        "answers": len(run.submit_ms),
                        "next": [percentile(run.next_ms, q) for q in (50, 95, 99)],
                        "submit": [percentile(run.submit_ms, q) for q in (50, 95, 99)],
                        "per_s": len(run.submit_ms) / seconds,
                        "problems": problems,
                    }
                )
                pairs = max(len(run.submit_ms), 1)
                r = rows[-1]
                print(
                    f"{size:>7} tasks  {annotators_n:>3} annotators  {r['answers']:>5} answers  "
                    f"next p50/p95/p99 {r['next'][0]:6.2f} {r['next'][1]:6.2f} {r['next'][2]:6.2f} ms  "
                    f"submit {r['submit'][0]:6.2f} {r['submit'][1]:6.2f} {r['submit'][2]:6.2f} ms  "
                    f"{r['per_s']:7.1f} answers/s  "
                    f"{'OK' if not problems else 'FAILED: ' + '; '.join(problems[:3])}  (load {load_s:.0f} s)",
                    flush=True,
                )
                print(
                    f"{'':>16}CPU per answer (next + submit): server {server_cpu / pairs * 1000:.2f} ms, "
                    f"PostgreSQL {database_cpu / pairs * 1000:.2f} ms, client {run.client_cpu_s / pairs * 1000:.2f} ms; "
                    f"{(server_cpu + database_cpu + run.client_cpu_s) / seconds:.2f} of {os.cpu_count()} CPUs busy; "
                    f"load average {load:.1f}",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_drop(args.database_url)
    served_twice = sum(1 for r in rows for p in r["problems"] if "given" in p or "refused" in p)
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http_impl = "httptools" if importlib.util.find_spec("httptools") else "h11"
    print(
        f"server: uvicorn synthlab.asgi:application --workers {args.workers} ({loop}, {http_impl}; PostgreSQL, "
        f"{'Redis channel layer' if args.redis else 'in-memory channel layer'}); overlap {args.overlap}; "
        f"{os.cpu_count()} CPUs shared by server, database and client; "
        f"client: {args.client_processes} processes, keep-alive connections"
    )
    print(
        f"double leases or refused submits: {served_twice}; runs verified: {sum(not r['problems'] for r in rows)}/{len(rows)}"
    )
    if any(r["problems"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
