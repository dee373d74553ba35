from django.db import transaction

from synthlab.errors import ValidationFailed

from ..models import Candidate, CandidateSource, Item, Project
from ..validation import label_value_validate
from .tasks import review_tasks_sync

MAX_CANDIDATE_CHARS = 200_000


def candidate_rows_validate(*, project: Project, rows: list) -> list[dict]:
    """Validates every row of a candidates push before anything is written; one bad row fails all."""
    if not isinstance(rows, list) or not rows:
        raise ValidationFailed(
            'Send {"candidates": [...]} with at least one candidate.',
            details=[{"row": None, "field": "candidates", "message": "Expected a non-empty list."}],
        )
    ids = {r.get("item") for r in rows if isinstance(r, dict) and r.get("item") is not None}
    ext_ids = {r.get("external_id") for r in rows if isinstance(r, dict) and r.get("external_id") is not None}
    items_by_id = {
        i.pk: i for i in Item.objects.filter(project=project, pk__in=[i for i in ids if isinstance(i, int)])
    }
    items_by_ext = {
        i.external_id: i
        for i in Item.objects.filter(project=project, external_id__in=[str(e) for e in ext_ids])
    }
    details, clean = [], []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            details.append({"row": number, "field": None, "message": "Each candidate must be an object."})
            continue
        item = None
        if row.get("item") is not None:
            item = items_by_id.get(row["item"]) if isinstance(row["item"], int) else None
            if item is None:
                details.append(
                    {"row": number, "field": "item", "message": f"No item {row['item']!r} in this project."}
                )
                continue
        elif row.get("external_id") is not None:
            item = items_by_ext.get(str(row["external_id"]))
            if item is None:
                details.append(
                    {
                        "row": number,
                        "field": "external_id",
                        "message": f"No item with external_id {row['external_id']!r}.",
                    }
                )
                continue
        else:
            details.append({"row": number, "field": "item", "message": "Name the item by id or external_id."})
            continue
        text = row.get("text") or ""
        if not isinstance(text, str):
            details.append({"row": number, "field": "text", "message": "Text must be a string."})
            continue
        if len(text) > MAX_CANDIDATE_CHARS:
            details.append(
                {"row": number, "field": "text", "message": f"Text is over {MAX_CANDIDATE_CHARS} characters."}
            )
            continue
        try:
            label = label_value_validate(project=project, text=item.display_text, label=row.get("label"))
        except ValueError as exc:
            details.append({"row": number, "field": "label", "message": str(exc)})
            continue
        if not text and label is None:
            details.append({"row": number, "field": "text", "message": "A candidate needs text or a label."})
            continue
        scores = row.get("scores") or {}
        if not isinstance(scores, dict):
            details.append({"row": number, "field": "scores", "message": "Scores must be an object."})
            continue
        clean.append(
            {
                "item": item,
                "text": text,
                "label": label,
                "model": str(row.get("model") or "")[:255],
                "recipe": str(row.get("recipe") or "")[:64],
                "scores": scores,
            }
        )
    if details:
        raise ValidationFailed(
            f"{len(details)} candidate row(s) are invalid; nothing was stored. First: row {details[0]['row']}, "
            f"{details[0]['field']}: {details[0]['message']}",
            details=details,
        )
    return clean


@transaction.atomic
def candidates_create(
    *, project: Project, rows: list, user=None, source: str = CandidateSource.EXTERNAL
) -> list[Candidate]:
    clean = candidate_rows_validate(project=project, rows=rows)
    created = Candidate.objects.bulk_create(
        [
            Candidate(
                item=row["item"],
                text=row["text"],
                label=row["label"],
                model=row["model"],
                recipe=row["recipe"] or source,
                scores=row["scores"],
                source=source,
                created_by=user,
                provenance={"source": source},
            )
            for row in clean
        ]
    )
    review_tasks_sync(project=project, item_ids={row["item"].pk for row in clean})
    return created
