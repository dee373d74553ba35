"""Seed tasks: the human-written (instruction, instances, is_classification) tasks that
self_instruct grows from and backtranslation takes its few-shot pairs from.

They are ordinary items of the project, imported through annotation's import service, marked by
`metadata["seed_task"]` = {"is_classification", "instances"}; the item's prompt is the instruction.
The file format is Self-Instruct's seed_tasks.jsonl (one {"id", "instruction", "instances",
"is_classification"} per line).
"""

from __future__ import annotations

import json

from annotation.models import Item, ItemStatus
from annotation.services.imports import items_import
from synthlab.errors import ValidationFailed

from .methods import self_instruct as si

SEED_KEY = "seed_task"


def seed_rows_parse(data: bytes | str) -> list[dict]:
    """JSON Lines (or one JSON list) of seed tasks; ValidationFailed naming the bad line."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    stripped = text.strip()
    if not stripped:
        raise ValidationFailed("The seed file is empty.", details=[{"field": "file", "message": "Empty."}])
    if stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except ValueError as exc:
            raise ValidationFailed(f"The seed file is not valid JSON: {exc}.") from None
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise ValidationFailed(
                f"Line {number} of the seed file is not valid JSON ({exc}).",
                details=[{"row": number, "field": None, "message": "Invalid JSON."}],
            ) from None
    return rows


def seed_tasks_import(*, project, rows: list, user=None) -> dict:
    """Imports seed tasks as items (re-importing an id updates it). All or nothing."""
    try:
        clean = si.seed_tasks_validate(rows)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details=[{"field": "seed_tasks", "message": str(exc)}]) from None
    result = items_import(
        project=project,
        user=user,
        rows=[
            (
                n,
                {
                    "external_id": task.get("id") or f"seed-{n}",
                    "prompt": task["instruction"],
                    "metadata": {
                        SEED_KEY: {
                            "is_classification": task["is_classification"],
                            "instances": task["instances"],
                        }
                    },
                },
            )
            for n, task in enumerate(clean, start=1)
        ],
    )
    # Seeds are inputs to recipes, not questions for reviewers.
    Item.objects.filter(project=project, metadata__has_key=SEED_KEY).update(status=ItemStatus.DONE)
    return result


def seed_items(project):
    return Item.objects.filter(project=project, metadata__has_key=SEED_KEY).order_by("id")


def seed_tasks(project) -> list[dict]:
    """The project's seed tasks in the repo's shape."""
    return [
        {
            "id": item.external_id or str(item.pk),
            "instruction": item.prompt,
            "is_classification": bool(item.metadata[SEED_KEY].get("is_classification")),
            "instances": list(item.metadata[SEED_KEY].get("instances") or []),
        }
        for item in seed_items(project)
    ]


def seed_pairs(project) -> list[dict]:
    """(instruction, output) pairs from the seed tasks' first instances; the instance input is
    appended to the instruction, as the training format does."""
    pairs = []
    for task in seed_tasks(project):
        for inst in task["instances"][:1]:
            instruction = task["instruction"]
            if inst.get("input"):
                instruction = f"{instruction}\n{inst['input']}"
            if inst.get("output"):
                pairs.append({"instruction": instruction, "output": inst["output"]})
    return pairs
