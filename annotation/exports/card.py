"""The dataset card (README.md) that goes with a `datasets` export."""

from __future__ import annotations

import json

from django.utils import timezone

from .rows import FORMATS, PROVENANCE_HELP, export_schema
from .spec import ExportSpec


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines)


def dataset_card(*, export, spec: ExportSpec, counts: dict, folder: str) -> str:
    project = export.project
    fmt = FORMATS[spec.format]
    split = spec.filter("split", "train")
    rows = counts.get("rows", 0)
    by_rule = counts.get("by_rule", {})
    parts = [
        "---",
        f"pretty_name: {json.dumps(f'{project.name} ({fmt.title})', ensure_ascii=False)}",
        "tags:",
        "- synthlab",
        f"- {spec.format}",
        "---",
        "",
        f"# {project.name}: {fmt.title}",
        "",
        f"{fmt.description}",
        "",
        f"Exported from SynthLab (project {project.pk}, export {export.pk}) on "
        f"{timezone.now():%Y-%m-%d %H:%M} UTC: **{rows} rows**.",
        "",
        "```python",
        "from datasets import load_from_disk",
        f'dataset = load_from_disk("{folder}")',
        f'dataset["{split}"][0]',
        "```",
        "",
        "## Rows per split and rule",
        "",
        _table(
            ("split", "rule", "rows"), [(split, rule, n) for rule, n in by_rule.items()] or [(split, "-", 0)]
        ),
        "",
    ]
    if fmt.training:
        parts += [
            f"Eval prompts removed (normalised text hash matched an eval item): "
            f"**{counts.get('eval_leaks_removed', 0)}** rows from {counts.get('eval_leak_items', 0)} items.",
            "",
        ]
    dropped = counts.get("dropped") or {}
    if dropped:
        parts += ["Left out, and why:", "", _table(("reason", "count"), list(dropped.items())), ""]
    if "kto" in counts:
        kto = counts["kto"]
        parts += [
            f"KTO balance: {kto['desirable']} desirable, {kto['undesirable']} undesirable; suggested "
            f"`desirable_weight={kto['desirable_weight']}`, `undesirable_weight={kto['undesirable_weight']}`.",
            "",
        ]
    schema = export_schema(spec)
    help_for = dict(PROVENANCE_HELP)
    parts += [
        "## Columns",
        "",
        _table(
            ("column", "type", "meaning"), [(f.name, str(f.type), help_for.get(f.name, "")) for f in schema]
        ),
        "",
        "## Filters and options",
        "",
        "```json",
        json.dumps(
            {"filters": spec.filters, "options": spec.options}, indent=2, ensure_ascii=False, sort_keys=True
        ),
        "```",
        "",
        "## Models that drafted the data",
        "",
        _table(("model", "candidates in rows"), list((counts.get("models") or {}).items()) or [("-", 0)]),
        "",
        "## Annotation guidelines",
        "",
        project.guidelines or "_None written._",
        "",
        "## Rating rubric",
        "",
        _table(("rating", "meaning"), sorted((project.rubric or {}).items())),
        "",
        f"Review modes: {', '.join(project.modes)}; annotators per task (overlap): {project.overlap}.",
        "",
    ]
    return "\n".join(parts)
