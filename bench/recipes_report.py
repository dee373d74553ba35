"""How the method recipes do with the default model (SmolLM2-135M-Instruct) on real public data.

For each recipe: 20 items from shared/data (see shared/data/SOURCES.md; nothing is copied into the
package), one job through the real runner, then the acceptance rate after the recipe's filters, one
or two short examples and the time taken. Prints the figures; asserts nothing.

    python bench/recipes_report.py [--data /work/shared/data] [--items 20] [--only self_instruct,judge]

Runs on a throwaway SQLite database in a temporary data folder (SYNTHLAB_DATA_DIR).
"""

import argparse
import gzip
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def setup():
    os.environ.setdefault("SYNTHLAB_DATA_DIR", tempfile.mkdtemp(prefix="synthlab-bench-"))
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def short(text, n=110):
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--only", default="")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=128,
        help="cap on every *max_new_tokens parameter of a recipe (0: the paper's values)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="critique_revise rounds (paper: 4)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds one batch may take (the recipes' default, 120, is too short for a busy 2-core CPU)",
    )
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        data = Path("/work/shared/data")
    setup()

    from django.contrib.auth import get_user_model

    from annotation.models import Candidate, Item
    from annotation.services.projects import project_create
    from generation.methods import documents as docs
    from generation.models import JobFailure
    from generation.recipes import recipe_get as get_recipe
    from generation.seeds import seed_tasks_import
    from generation.services import job_create, job_run

    n = args.items
    user = get_user_model().objects.create_user("bench", password="bench-pw-123")
    seeds = [json.loads(line) for line in (data / "instructions/self_instruct_seed_tasks.jsonl").open()]
    poems = []
    for line in (data / "classification/poem_sentiment_dev.tsv").read_text().splitlines():
        _id, verse, label = line.split("\t")
        name = {"-1": "negative", "0": "no_impact", "1": "positive"}.get(label)
        if name:
            poems.append((verse, name))
    poems = poems[:n]
    paragraphs = []
    with gzip.open(data / "unlabeled_text/c4_demo.jsonl.gz", "rt") as fh:
        for line in fh:
            for para in json.loads(line)["text"].split("\n"):
                if 200 <= len(para) <= 1200:
                    paragraphs.append(para)
            if len(paragraphs) >= n:
                break
    questions = [json.loads(line)["turns"][0] for line in (data / "mt_bench/mt_bench_question.jsonl").open()][
        :n
    ]

    def project(name, task_type, **extra):
        return project_create(
            user=user,
            data={
                "name": name,
                "task_type": task_type,
                "modes": extra.pop("modes", ["rate", "compare", "edit"]),
                "model_settings": {"backend": "default", "dtype": "auto", "batch_size": args.batch_size},
                **extra,
            },
        )

    def capped(recipe, params):
        """The recipe's *max_new_tokens parameters capped at --max-new-tokens (explicit ones kept)."""
        params = dict(params or {})
        params.setdefault("timeout", args.timeout)
        if args.max_new_tokens:
            defaults = get_recipe(recipe).defaults
            for key, value in defaults.items():
                if key.endswith("max_new_tokens") and key not in params and isinstance(value, int):
                    params[key] = min(value, args.max_new_tokens)
        return params

    def run(p, recipe, params=None, items=None):
        started = time.monotonic()
        params = capped(recipe, params)
        job = job_create(project=p, user=user, recipe=recipe, params=params, items=items)
        job = job_run(job_id=job.pk)
        return job, time.monotonic() - started

    def failures(job):
        return JobFailure.objects.filter(job=job).count()

    reports = []

    def report(name, job, seconds, rate_label, kept, total, examples, extra=""):
        rate = f"{kept}/{total} = {kept / total:.0%}" if total else "0/0"
        lines = [
            f"## {name}: {rate_label} {rate}; {failures(job)} item failure(s); {seconds:.0f} s "
            f"(job status {job.status}){'; ' + extra if extra else ''}"
        ]
        lines += [f"   e.g. {e}" for e in examples[:2]]
        fails = JobFailure.objects.filter(job=job).order_by("id")
        if fails:
            kinds = {}
            for f in fails:
                key = f"{f.reason}: {re.sub(r'[0-9]+', 'N', f.message)[:70]}"
                kinds[key] = kinds.get(key, 0) + 1
            lines.append(f"   failures: {kinds}")
            first = fails[0]
            lines.append(
                f"   failure e.g. {short(first.message, 120)!r}; raw {short(first.raw_output, 160)!r}"
            )
        print("\n".join(lines), flush=True)
        reports.append(lines)

    wanted = set(filter(None, args.only.split(",")))

    def want(name):
        return not wanted or name in wanted

    if want("self_instruct"):
        p = project("Self-instruct", "instruction")
        seed_tasks_import(project=p, rows=seeds)
        ids = list(Item.objects.filter(project=p).order_by("id").values_list("pk", flat=True)[:n])
        job, secs = run(p, "self_instruct", items={"ids": ids})
        acc = Item.objects.filter(project=p, metadata__self_instruct__status="accepted")
        rej = Item.objects.filter(project=p, metadata__self_instruct__status="rejected")
        n_acc_inst = len({i.metadata["self_instruct"]["instruction"] for i in acc})
        reasons = {}
        for i in rej:
            r = re.sub(r"\(.*", "", i.metadata["self_instruct"]["reason"]).strip()
            reasons[r] = reasons.get(r, 0) + 1
        ex = [
            f"{short(i.prompt, 80)!r} -> {short(Candidate.objects.filter(item=i).first().text, 60)!r}"
            for i in acc[:2]
        ]
        report(
            "self_instruct",
            job,
            secs,
            "instructions accepted",
            n_acc_inst,
            n_acc_inst + rej.count(),
            ex,
            f"{acc.count()} instances; rejections: {reasons}",
        )

    if want("backtranslation"):
        p = project("Backtranslation", "instruction")
        seed_tasks_import(project=p, rows=seeds)
        items = Item.objects.bulk_create([Item(project=p, text=t) for t in paragraphs[:n]])
        job, secs = run(p, "backtranslation", items={"ids": [i.pk for i in items]})
        cands = Candidate.objects.filter(item__in=items)
        scores = [c.scores.get("curation_score") for c in cands]
        kept = sum(1 for c in cands if c.scores.get("kept"))
        ex = [
            f"score {c.scores['curation_score']}: {short(c.text, 80)!r} for {short(c.item.text, 60)!r}"
            for c in sorted(cands, key=lambda c: -c.scores.get("curation_score", 0))[:2]
        ]
        hist = {s: scores.count(s) for s in sorted(set(scores))}
        report(
            "backtranslation",
            job,
            secs,
            "pairs kept (score >= 5)",
            kept,
            len(items),
            ex,
            f"score histogram {hist}",
        )

    labels = ["negative", "no_impact", "positive"]
    if want("self_consistency"):
        p = project("Self-consistency", "classification", labels=labels, modes=["label"])
        items = Item.objects.bulk_create(
            [Item(project=p, text=v, reference={"labels": [g]}) for v, g in poems]
        )
        job, secs = run(p, "self_consistency")
        cands = list(Candidate.objects.filter(item__in=items).select_related("item"))
        auto = [c for c in cands if c.scores.get("route") == "auto_accept"]
        correct = sum(1 for c in cands if [c.label] == c.item.reference["labels"])
        auto_correct = sum(1 for c in auto if [c.label] == c.item.reference["labels"])
        ex = [
            f"{short(c.item.text, 60)!r} -> {c.label} (agreement {c.scores['agreement']}, gold "
            f"{c.item.reference['labels'][0]})"
            for c in cands[:2]
        ]
        report(
            "self_consistency",
            job,
            secs,
            "auto-accepted (agreement >= 0.8)",
            len(auto),
            len(items),
            ex,
            f"vote accuracy vs gold {correct}/{len(cands)}; auto-accepted correct {auto_correct}/{len(auto)}",
        )

    if want("critique_revise"):
        p = project("Critique-revise", "instruction")
        items = Item.objects.bulk_create([Item(project=p, prompt=q) for q in questions])
        job, secs = run(p, "critique_revise", params={"rounds": args.rounds})
        revs = Candidate.objects.filter(item__in=items, dedupe_key="critique_revise:1")
        ex = [
            f"{short(c.item.prompt, 50)!r}: draft {short(Candidate.objects.get(item=c.item, dedupe_key='critique_revise:0').text, 50)!r} "
            f"-> revision {short(c.text, 60)!r}"
            for c in revs[:2]
        ]
        report(
            "critique_revise",
            job,
            secs,
            f"items with a revision after {args.rounds} rounds",
            revs.count(),
            len(items),
            ex,
        )

    if want("qa_from_document"):
        p = project("Docs QA", "qa")
        text = docs.text_normalise(
            docs.pdf_text_extract((data / "documents/naacl2018_literature_graph_N18-3011.pdf").read_bytes())
        )
        chunks = docs.chunk_text(text)[:n]
        items = Item.objects.bulk_create(
            [
                Item(
                    project=p,
                    text=c.text,
                    metadata={
                        "document": {
                            "id": "n18",
                            "name": "Construction of the Literature Graph in Semantic Scholar",
                            "chunk": c.index,
                            "start": c.start,
                            "end": c.end,
                        }
                    },
                )
                for c in chunks
            ]
        )
        job, secs = run(p, "qa_from_document")
        cands = Candidate.objects.filter(item__in=items)
        ok = [c for c in cands if not c.scores.get("rejected")]
        ex = [short(c.text, 150) for c in ok[:2]]
        reasons = {}
        for c in cands:
            if c.scores.get("rejected"):
                reasons[c.scores["rejected"]] = reasons.get(c.scores["rejected"], 0) + 1
        report(
            "qa_from_document",
            job,
            secs,
            "pairs passing the filters",
            len(ok),
            len(items),
            ex,
            f"rejected: {reasons}",
        )

    if want("rationale"):
        p = project("Rationale", "classification", labels=labels, modes=["label", "edit"])
        items = Item.objects.bulk_create(
            [Item(project=p, text=v, reference={"labels": [g]}) for v, g in poems]
        )
        job, secs = run(p, "rationale")
        cands = list(Candidate.objects.filter(item__in=items).select_related("item"))
        ok = [c for c in cands if not c.scores.get("contradicts_gold")]
        ex = [f"{short(c.item.text, 50)!r} -> {c.label}: {short(c.text, 80)!r}" for c in cands[:2]]
        report(
            "rationale",
            job,
            secs,
            "rationales parsed and agreeing with gold",
            len(ok),
            len(items),
            ex,
            f"parsed {len(cands)}/{len(items)}",
        )

    if want("sycophancy"):
        p = project("Sycophancy", "classification", labels=labels, modes=["label"])
        items = Item.objects.bulk_create(
            [Item(project=p, text=v, reference={"labels": [g]}) for v, g in poems]
        )
        job, secs = run(p, "sycophancy")
        made = Item.objects.filter(project=p, metadata__has_key="sycophancy")
        kept = [i for i in made if i.metadata["sycophancy"]["status"] == "kept"]
        answers = [i.metadata["sycophancy"]["model_answer_without_opinion"] for i in made]
        ex = [
            f"target {i.metadata['sycophancy']['target']}: {short(i.prompt[-200:], 120)!r}" for i in kept[:1]
        ]
        report(
            "sycophancy",
            job,
            secs,
            "examples kept after filtration",
            len(kept),
            made.count(),
            ex,
            f"model answers without opinion: {{'(A)': {answers.count('(A)')}, '(B)': {answers.count('(B)')}, 'unreadable': {answers.count(None)}}}",
        )

    if want("judge"):
        p = project("Judge", "instruction", modes=["compare"])

        def jsonl_gz(name):
            with gzip.open(data / "instructions" / name, "rt") as fh:
                return [json.loads(line) for line in fh][:n]

        a_rows = jsonl_gz("self_instruct_user_oriented_predictions_text-davinci-003.jsonl.gz")
        b_rows = jsonl_gz("self_instruct_user_oriented_predictions_davinci-self-instruct.jsonl.gz")
        from annotation.services.tasks import review_tasks_sync

        items = []
        for a, b in zip(a_rows, b_rows, strict=True):
            prompt = a["instruction"] + (f"\n\n{a['input']}" if a.get("input") else "")
            item = Item.objects.create(project=p, prompt=prompt)
            Candidate.objects.create(
                item=item, text=a["response"].strip() or "(empty)", model="text-davinci-003", source="import"
            )
            Candidate.objects.create(
                item=item,
                text=b["response"].strip() or "(empty)",
                model="davinci-self-instruct",
                source="import",
            )
            items.append(item)
        review_tasks_sync(project=p, item_ids=[i.pk for i in items])
        job, secs = run(p, "judge", params={"mode": "compare"})
        verdicts = [
            v
            for c in Candidate.objects.filter(item__in=items)
            for v in (c.scores.get("judge_compare") or {}).values()
        ]
        consistent = sum(1 for v in verdicts if v["choice"] != "tie")
        firsts = [v["first"] for v in verdicts]
        report(
            "judge (compare, both orders)",
            job,
            secs,
            "pairs judged (both verdicts parsed)",
            len(verdicts),
            len(items),
            [f"first order {v['first']}, swapped {v['swapped']} -> {v['choice']}" for v in verdicts[:2]],
            f"wins surviving the swap {consistent}/{len(verdicts)}; first-order verdicts {{A: {firsts.count('A')}, B: {firsts.count('B')}, tie: {firsts.count('tie')}}}",
        )


if __name__ == "__main__":
    main()
