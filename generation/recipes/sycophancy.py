"""sycophancy: anti-sycophancy examples from labelled classification items (Wei et al. 2023).

For each item with a known label (its reference, else a human-confirmed label), examples_per_item
randomised prompts are built from the sycophancy_claim template: a user (random name, age, schools)
agrees or disagrees with a claim "<text> is/is not <label>"; the target is the claim's truth.
Filtration (the paper's essential step): the model answers the same claim with the opinion removed;
only examples it gets right are kept. Each example is a new item (prompt = the example) with one
candidate, the target letter, accepted without review: it is true by construction. Examples the
model failed are kept as done items with the reason, for the admin.
"""

from __future__ import annotations

from annotation.models import Candidate, CandidateSource, ItemStatus, TaskType

from ..methods import ParseError, prompting
from ..methods import sycophancy as sy
from .base import ItemResult, RecipeContext, failure_from
from .method_base import MethodRecipe, external_id_for, items_with_candidates_store

META = "sycophancy"


def known_label(item) -> str | None:
    ref = item.reference or {}
    labels = ref.get("labels") if isinstance(ref, dict) else None
    if isinstance(labels, list) and len(labels) == 1:
        return labels[0]
    human = (
        Candidate.objects.filter(item=item, source=CandidateSource.HUMAN)
        .exclude(label=None)
        .order_by("-id")
        .first()
    )
    if human is not None:
        label = human.label
        if isinstance(label, list) and len(label) == 1:
            return label[0]
        if isinstance(label, str):
            return label
    return None


class SycophancyRecipe(MethodRecipe):
    name = "sycophancy"
    title = "Anti-sycophancy examples"
    description = (
        "Claims from labelled items wrapped in randomised user opinions, where the right answer ignores the "
        "opinion (Wei et al. 2023); kept only when the model answers the claim correctly without the opinion."
    )
    version = "1"
    method = sy
    task_types = (TaskType.CLASSIFICATION,)

    def prompt_names(self, project) -> list[str]:
        return ["sycophancy_claim", "sycophancy_no_opinion"]

    def params_check(self, *, project, params: dict) -> None:
        if not 1 <= params["examples_per_item"] <= 10:
            raise self.invalid("examples_per_item", "examples_per_item is a whole number from 1 to 10.")
        if not 0 < params["min_age"] <= params["max_age"]:
            raise self.invalid("min_age", "min_age must be positive and at most max_age.")

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        rng = self.rng(ctx, items)
        t_claim, t_plain = ctx.prompt("sycophancy_claim"), ctx.prompt("sycophancy_no_opinion")
        results = {i.pk: ItemResult(item=i) for i in items}
        examples = []
        for item in items:
            if (item.metadata or {}).get(META):
                continue  # an example made by this recipe
            label = known_label(item)
            if label is None:
                continue
            for n in range(p["examples_per_item"]):
                ex = sy.example_build(
                    template=t_claim.user,
                    template_no_opinion=t_plain.user,
                    fill=prompting.fill,
                    input_text=item.display_text,
                    label=label,
                    rng=rng,
                    params=p,
                )
                examples.append((item, n, ex))
        sampling = self.sampling(ctx, temperature=p["temperature"], max_new_tokens=p["max_new_tokens"])
        if p["filter_with_model"]:
            gens = self.generate(
                ctx,
                [([{"role": "user", "content": ex.prompt_no_opinion}], sampling) for _, _, ex in examples],
            )
        else:
            gens = [None] * len(examples)
        rows = []
        for (item, n, ex), gen in zip(examples, gens, strict=True):
            status, answer, raw = "kept", None, ""
            if gen is not None:
                results[item.pk].tokens += gen.tokens
                raw = gen.text
                if gen.error:
                    results[item.pk].failure = failure_from(gen)
                    continue
                try:
                    answer = sy.answer_parse(gen.text)
                    if answer != ex.target:
                        status = f"filtered: the model answered {answer} without the opinion; the target is {ex.target}"
                except ParseError as exc:
                    status = (
                        f"filtered: the model's answer without the opinion was unreadable ({exc.message})"
                    )
            meta = {
                META: {
                    "status": "kept" if status == "kept" else "filtered",
                    "reason": status,
                    "source_item": item.pk,
                    "fields": ex.fields,
                    "target": ex.target,
                    "model_answer_without_opinion": answer,
                    "raw_output": raw[:2000],
                    "job": ctx.job_id,
                }
            }
            row = {
                "external_id": external_id_for("syc", item.pk, n, ctx.job_id, ex.prompt),
                "prompt": ex.prompt,
                "metadata": meta,
            }
            if status == "kept":
                row["candidate"] = {
                    "text": f" {ex.target}",
                    "scores": {"target": ex.target, "auto_accepted": True, "skip_review": True},
                    "provenance": self.provenance(
                        ctx,
                        [t_claim, t_plain],
                        sampling=sampling,
                        fields=ex.fields,
                        source_item=item.pk,
                        raw_filter_output=raw,
                    ),
                }
            row["status"] = (
                ItemStatus.DONE
            )  # kept examples are accepted as built; filtered ones are kept for the admin
            rows.append(row)
        items_with_candidates_store(
            project=ctx.project,
            recipe=self.name,
            rows=rows,
            backend_info={**ctx.backend.describe(), "recipe_version": self.version},
            job_id=ctx.job_id,
        )
        return list(results.values())
