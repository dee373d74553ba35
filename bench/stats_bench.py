"""Dashboard cost: how long `annotation.stats.project_stats` (what the stats API and every live
dashboard refresh compute) and the SVG charts take for a project of a given size.

    python bench/stats_bench.py                      # 5,000 items on SQLite (temp folder)
    python bench/stats_bench.py --items 20000
    python bench/stats_bench.py --database-url postgres://postgres@127.0.0.1:5432/synthlab_bench_stats

The data: per item two model candidates out of four models, one rate task per candidate and one
compare task, each answered by 3 of 5 annotators (9 annotations per item), bulk-inserted. Figures:
seconds for the annotation load, agreement, annotators, Bradley–Terry with 1,000 bootstrap
resamples, the whole `project_stats`, and the charts; peak RSS. Target for 5,000 items (45,000 annotations)
on this machine: a full refresh under 3 s, a cached one (another dashboard, same data) under 0.2 s.
"""

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--database-url", default="sqlite")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="synthlab-bench-stats-")
    os.environ["SYNTHLAB_DATA_DIR"] = data_dir
    os.environ.pop("REDIS_URL", None)
    if args.database_url != "sqlite":
        os.environ["DATABASE_URL"] = args.database_url
        name = args.database_url.rsplit("/", 1)[1]
        admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    else:
        os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "synthlab.settings.base"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(args.items)
    if args.database_url != "sqlite":
        from django.db import connections

        connections.close_all()
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)


def run(n_items: int) -> None:
    from django.contrib.auth import get_user_model

    from annotation import charts, stats
    from annotation.models import Annotation, Candidate, Item, Membership, ReviewTask, Role, TaskStatus
    from annotation.services.projects import project_create

    rng = random.Random(0)
    User = get_user_model()
    admin = User.objects.create_user("bench-admin", password="x")
    project = project_create(
        user=admin,
        data={"name": "Bench", "task_type": "instruction", "modes": ["rate", "compare"], "overlap": 3},
    )
    annotators = [User.objects.create_user(f"annotator{n}", password="x") for n in range(5)]
    Membership.objects.bulk_create(
        [Membership(project=project, user=u, role=Role.ANNOTATOR) for u in annotators]
    )
    models = ["gpt", "llama", "mistral", "smol"]
    strength = {"gpt": 1.0, "llama": 0.5, "mistral": 0.3, "smol": -0.5}

    started = time.perf_counter()
    items = Item.objects.bulk_create([Item(project=project, prompt=f"Question {n}?") for n in range(n_items)])
    candidates = []
    for item in items:
        for model in rng.sample(models, 2):
            candidates.append(Candidate(item=item, text=f"Answer by {model}.", model=model))
    candidates = Candidate.objects.bulk_create(candidates, batch_size=2000)
    tasks = []
    for i in range(0, len(candidates), 2):
        a, b = candidates[i], candidates[i + 1]
        for c in (a, b):
            tasks.append(
                ReviewTask(
                    project=project, item_id=c.item_id, mode="rate", key=f"rate:c{c.pk}", candidate_a=c
                )
            )
        tasks.append(
            ReviewTask(
                project=project,
                item_id=a.item_id,
                mode="compare",
                key=f"compare:c{a.pk}:c{b.pk}",
                candidate_a=a,
                candidate_b=b,
            )
        )
    for task in tasks:
        task.overlap, task.annotation_count, task.status = 3, 3, TaskStatus.DONE
    tasks = ReviewTask.objects.bulk_create(tasks, batch_size=2000)
    by_id = {c.pk: c for c in candidates}
    annotations = []
    for task in tasks:
        for user in rng.sample(annotators, 3):
            a = by_id[task.candidate_a_id]
            if task.mode == "rate":
                rating = min(5, max(1, round(3 + 1.5 * strength[a.model] + rng.gauss(0, 0.8))))
                value, cols = {"rating": rating, "comment": ""}, {"rating": rating}
            else:
                b = by_id[task.candidate_b_id]
                p = 1 / (1 + 10 ** (strength[b.model] - strength[a.model]))
                draw = rng.random()
                choice = "tie" if draw < 0.1 else ("a" if draw < 0.1 + 0.9 * p else "b")
                value, cols = {"choice": choice, "reason": ""}, {"choice": choice}
            annotations.append(
                Annotation(
                    task=task,
                    annotator=user,
                    mode=task.mode,
                    value=value,
                    client_id=uuid.uuid4(),
                    duration_ms=rng.randint(5_000, 60_000),
                    **cols,
                )
            )
    Annotation.objects.bulk_create(annotations, batch_size=5000)
    print(
        f"data: {n_items} items, {len(tasks)} tasks, {len(annotations)} annotations "
        f"(inserted in {time.perf_counter() - started:.1f} s)"
    )

    def timed(label, fn):
        start = time.perf_counter()
        result = fn()
        print(f"{label:<34} {time.perf_counter() - start:7.3f} s")
        return result

    loaded = timed("load annotations", lambda: stats._load(project))
    timed("agreement per mode", lambda: stats.agreement_by_mode(loaded))
    timed("annotators (gold, majority)", lambda: stats.annotator_rows(loaded))
    rankings = timed("Bradley-Terry, 1000 bootstrap", lambda: stats.model_rankings(loaded))
    timed("agreement over time", lambda: stats.agreement_over_time(loaded))
    timed("progress over time", lambda: stats.progress_over_time(project))
    numbers = timed("project_stats (whole refresh)", lambda: stats.project_stats(project=project))
    timed("project_stats (cached, same data)", lambda: stats.project_stats(project=project))
    timed("charts (7 SVGs)", lambda: charts.dashboard_charts(numbers))
    print(
        "BT:",
        ", ".join(
            f"{r['model']} {r['bt_score']:.0f} [{r['ci_low']:.0f}, {r['ci_high']:.0f}]" for r in rankings
        ),
    )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
