"""What the method recipes (self_instruct, backtranslation, self_consistency, critique_revise,
qa_from_document, rationale, sycophancy, judge) share: parameters checked against the method's
DEFAULTS (the paper's values), prompts filled with generation.methods.prompting, provenance that
records every prompt template and parameter, and the items/candidates some recipes create
themselves (new instructions, sycophancy examples).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace

from django.db import transaction

from annotation.models import Candidate, CandidateSource, Item, ItemStatus
from annotation.services.tasks import review_tasks_sync
from synthlab.errors import ValidationFailed

from ..backends import ChatRequest, Generation, Sampling
from ..methods import ParseError, prompting
from .base import Failure, Recipe, RecipeContext

# Parameters every recipe takes besides its method's: the shared sampling ones and batch_size.
SHARED_PARAMS = set(Sampling.FIELDS) | {"batch_size"}


def _coerce(key: str, default, value):
    """A form or API value in the type of the default; ValueError naming the parameter."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "on", "yes"):
            return True
        if str(value).lower() in ("false", "0", "off", "no", ""):
            return False
        raise ValueError(f"Parameter {key} is true or false, not {value!r}.")
    if isinstance(default, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Parameter {key} must be a number, not {value!r}.") from None
        if isinstance(default, int):
            if number != int(number):
                raise ValueError(f"Parameter {key} must be a whole number, not {value!r}.")
            return int(number)
        return number
    if isinstance(default, list):
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
            value = parsed
        if not isinstance(value, list):
            raise ValueError(f"Parameter {key} must be a list.")
        return value
    if isinstance(default, str):
        return str(value)
    return value


class MethodRecipe(Recipe):
    """A Recipe whose parameters are its method module's DEFAULTS."""

    method = None  # the generation.methods module

    @property
    def defaults(self) -> dict:  # type: ignore[override]
        return dict(self.method.DEFAULTS)

    def params_clean(self, *, project, params: dict) -> dict:
        if not isinstance(params, dict):
            raise ValidationFailed(
                "params must be an object.", details=[{"field": "params", "message": "Invalid."}]
            )
        known = set(self.method.DEFAULTS) | SHARED_PARAMS
        unknown = sorted(set(params) - known)
        if unknown:
            message = (
                f"Unknown parameter(s) for {self.name}: {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(self.method.DEFAULTS))}."
            )
            raise ValidationFailed(message, details=[{"field": "params", "message": message}])
        typed = {}
        for key, value in params.items():
            if value in (None, ""):
                continue
            try:
                typed[key] = _coerce(key, self.method.DEFAULTS.get(key), value)
            except ValueError as exc:
                raise ValidationFailed(
                    str(exc), details=[{"field": f"params.{key}", "message": str(exc)}]
                ) from None
        clean = super().params_clean(project=project, params=typed)
        self.params_check(project=project, params=clean)
        return clean

    def params_check(self, *, project, params: dict) -> None:
        """Recipe-specific checks; raise ValidationFailed via `invalid`."""

    @staticmethod
    def invalid(field: str, message: str) -> ValidationFailed:
        return ValidationFailed(message, details=[{"field": f"params.{field}", "message": message}])

    # helpers for run() -------------------------------------------------------------------------

    def method_params(self, ctx: RecipeContext) -> dict:
        return {k: ctx.params.get(k, v) for k, v in self.method.DEFAULTS.items()}

    def rng(self, ctx: RecipeContext, items: list) -> random.Random:
        """Reproducible per job and batch: the sampling seed, the job and the batch's first item."""
        first = items[0].pk if items else 0
        return random.Random(f"{self.name}:{ctx.sampling.seed}:{ctx.job_id}:{first}")

    def provenance(
        self, ctx: RecipeContext, templates: list, *, sampling: Sampling | None = None, **extra
    ) -> dict:
        sampling = sampling or ctx.sampling
        return {
            "prompts": [t.provenance() for t in templates],
            "prompt": templates[0].provenance() if templates else None,
            "params": self.method_params(ctx),
            "sampling": sampling.as_dict(),
            "seed": sampling.seed,
            **extra,
        }

    @staticmethod
    def generate(ctx: RecipeContext, requests: list[tuple[list[dict], Sampling]]) -> list[Generation]:
        if not requests:
            return []
        return ctx.backend.generate([ChatRequest(messages=m, sampling=s) for m, s in requests])

    @staticmethod
    def sampling(ctx: RecipeContext, **changes) -> Sampling:
        return replace(ctx.sampling, **changes)

    @staticmethod
    def messages(template, **values) -> list[dict]:
        return prompting.messages(template, **values)

    @staticmethod
    def unparseable(exc: ParseError) -> Failure:
        return Failure("unparseable", exc.message, exc.raw)


def external_id_for(prefix: str, *parts) -> str:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f"{prefix}-{digest}"


@transaction.atomic
def items_with_candidates_store(
    *, project, recipe: str, rows: list[dict], backend_info: dict, job_id
) -> dict:
    """Creates (or, for an external id seen before, updates) generated items, and the candidate
    each row carries, then their review tasks. Used by recipes whose output is new items.

    A row: {"external_id", "prompt", "metadata", "status"?, "candidate": {"text", "label", "scores",
    "provenance"} | None}. Candidates get the dedupe key "<recipe>:0": a rerun stores none twice.
    """
    from annotation.validation import content_hash

    if not rows:
        return {"items": 0, "candidates": 0, "tasks": 0}
    # Written directly, not through the import service: an import queues a label task for every new
    # item of a classification project, and these items get their tasks from their candidates only.
    existing_items = {
        i.external_id: i
        for i in Item.objects.filter(project=project, external_id__in=[r["external_id"] for r in rows])
    }
    for row in rows:
        item = existing_items.get(row["external_id"])
        if item is None:
            existing_items[row["external_id"]] = Item.objects.create(
                project=project,
                external_id=row["external_id"],
                prompt=row["prompt"],
                metadata=row.get("metadata") or {},
                content_hash=content_hash(row["prompt"]),
            )
        else:
            item.prompt, item.metadata = row["prompt"], row.get("metadata") or {}
            item.content_hash = content_hash(row["prompt"])
            item.save(update_fields=["prompt", "metadata", "content_hash", "updated_at"])
    by_ext = existing_items
    done_ids = [by_ext[r["external_id"]].pk for r in rows if r.get("status") == ItemStatus.DONE]
    if done_ids:
        Item.objects.filter(pk__in=done_ids).update(status=ItemStatus.DONE)
    candidates = []
    for row in rows:
        cand = row.get("candidate")
        if not cand:
            continue
        candidates.append(
            Candidate(
                item=by_ext[row["external_id"]],
                text=cand.get("text", ""),
                label=cand.get("label"),
                source=CandidateSource.MODEL,
                model=str(backend_info.get("model", ""))[:255],
                recipe=recipe,
                scores=cand.get("scores") or {},
                dedupe_key=f"{recipe}:0",
                provenance={
                    **backend_info,
                    "recipe": recipe,
                    "job": job_id,
                    **(cand.get("provenance") or {}),
                },
            )
        )
    existing = set(
        Candidate.objects.filter(item__in=[c.item for c in candidates], dedupe_key=f"{recipe}:0").values_list(
            "item_id", flat=True
        )
    )
    fresh = [c for c in candidates if c.item.pk not in existing]
    Candidate.objects.bulk_create(fresh, ignore_conflicts=True)
    tasks = review_tasks_sync(project=project, item_ids={c.item.pk for c in fresh}) if fresh else 0
    return {"items": len(rows), "candidates": len(fresh), "tasks": tasks}
