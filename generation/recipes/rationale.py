"""rationale (distilling step by step): the model explains, then answers "So the answer is <label>".
The candidate's label is the answer and its text the rationale, so reviewers correct the label (label
queue) and edit the rationale (edit queue) separately, and exports can keep or drop the rationale.

A rationale whose answer contradicts the item's gold label (Item.reference) is kept for the admin
with scores["contradicts_gold"] and, with drop_contradicting (the default), never queued.
Few-shot exemplars come from items that carry a reference label and metadata["rationale"].
"""

from __future__ import annotations

from annotation.models import Item, TaskType

from ..methods import ParseError
from ..methods import rationale as ra
from .base import Draft, ItemResult, RecipeContext, failure_from
from .method_base import MethodRecipe


def gold_label(item):
    ref = item.reference or {}
    if isinstance(ref, dict):
        labels = ref.get("labels") or ([ref["label"]] if ref.get("label") else [])
        return labels[0] if len(labels) == 1 else (labels or None)
    return ref or None


class RationaleRecipe(MethodRecipe):
    name = "rationale"
    title = "Rationales (distilling step by step)"
    description = (
        "Labels with the reasoning that leads to them (Hsieh et al. 2023). Reviewers correct label and "
        "rationale separately; rationales contradicting the gold label are dropped."
    )
    version = "1"
    method = ra
    task_types = (TaskType.CLASSIFICATION,)

    def prompt_names(self, project) -> list[str]:
        return ["rationale"]

    def params_check(self, *, project, params: dict) -> None:
        if not project.labels:
            raise self.invalid("labels", "Add the project's labels first.")

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        rng = self.rng(ctx, items)
        labels = list(ctx.project.labels)
        template = ctx.prompt("rationale")
        examples = [
            {"input": i.display_text, "rationale": i.metadata["rationale"], "label": gold_label(i)}
            for i in Item.objects.filter(project=ctx.project, metadata__has_key="rationale")[:50]
            if isinstance(gold_label(i), str)
        ]
        todo = [i for i in items if 0 in ctx.samples_for(i, 1)]
        sampling = self.sampling(ctx, temperature=p["temperature"], max_new_tokens=p["max_new_tokens"])
        gens = self.generate(
            ctx,
            [
                (
                    self.messages(
                        template,
                        labels=", ".join(labels),
                        guidelines=ctx.project.guidelines,
                        examples=ra.exemplars(
                            [e for e in examples if e["input"] != item.display_text],
                            rng=rng,
                            n=p["num_examples"],
                            marker=p["answer_marker"],
                        ),
                        text=item.display_text,
                    ),
                    sampling,
                )
                for item in todo
            ],
        )
        results = {i.pk: ItemResult(item=i) for i in items}
        for item, gen in zip(todo, gens, strict=True):
            result = results[item.pk]
            result.tokens += gen.tokens
            if gen.error:
                result.failure = failure_from(gen)
                continue
            try:
                parsed = ra.rationale_parse(gen.text, marker=p["answer_marker"], labels=labels)
            except ParseError as exc:
                result.failure = self.unparseable(exc)
                continue
            gold = gold_label(item)
            contradicts = ra.contradicts_gold(parsed["answer"], gold)
            result.drafts.append(
                Draft(
                    sample=0,
                    text=parsed["rationale"],
                    label=parsed["answer"],
                    scores={
                        "rationale": True,
                        "contradicts_gold": contradicts,
                        "gold": gold,
                        "skip_review": contradicts and p["drop_contradicting"],
                    },
                    provenance=self.provenance(ctx, [template], raw_output=gen.text),
                )
            )
        return list(results.values())
