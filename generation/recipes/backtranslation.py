"""backtranslation (Humpback): the model writes the instruction each text answers (self-augment,
few-shot from the project's seed pairs), then rates the pair 1-5 with the paper's rubric
(self-curate). One candidate per item: text = the instruction, the item's text is the answer.

Scores: curation_score, curation_reasoning, kept (score >= threshold). Pairs below the threshold
are kept for the admin (and the dev-set precision/recall) but never queued. Kept pairs go to the
review queue, or with route "export" straight to export (scores["auto_accepted"]).
"""

from __future__ import annotations

from synthlab.errors import ValidationFailed

from ..methods import ParseError
from ..methods import backtranslation as bt
from ..seeds import seed_pairs
from .base import Draft, Failure, ItemResult, RecipeContext, failure_from
from .method_base import MethodRecipe


class BacktranslationRecipe(MethodRecipe):
    name = "backtranslation"
    title = "Instruction backtranslation"
    description = (
        "Humpback (Li et al. 2023): the model writes the instruction each text would answer, then scores "
        "the pair 1-5 with the paper's rubric; pairs at or above the threshold (default 5) go to review or "
        "straight to export."
    )
    version = "1"
    method = bt

    def prompt_names(self, project) -> list[str]:
        return ["backtranslation_augment", "backtranslation_curate"]

    def params_check(self, *, project, params: dict) -> None:
        if params["route"] not in bt.ROUTES:
            raise self.invalid("route", f"route is one of: {', '.join(bt.ROUTES)}.")
        if not 1 <= params["threshold"] <= 5:
            raise self.invalid("threshold", "threshold is a score from 1 to 5; the paper keeps 5.")
        if not seed_pairs(project):
            raise ValidationFailed(
                "Backtranslation needs seed (instruction, output) pairs for its few-shot prompt; import seed "
                "tasks first.",
                details=[{"field": "seed_tasks", "message": "No seed pairs."}],
            )

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        rng = self.rng(ctx, items)
        pairs = seed_pairs(ctx.project)
        t_aug, t_cur = ctx.prompt("backtranslation_augment"), ctx.prompt("backtranslation_curate")
        todo = [i for i in items if 0 in ctx.samples_for(i, 1)]
        results = {i.pk: ItemResult(item=i) for i in items}
        aug_sampling = self.sampling(
            ctx, temperature=p["temperature"], top_p=p["top_p"], max_new_tokens=p["max_new_tokens"]
        )
        gens = self.generate(
            ctx,
            [
                (
                    self.messages(
                        t_aug,
                        examples=bt.augment_examples(
                            pairs, rng=rng, n=p["num_examples"], max_chars=p["max_example_chars"]
                        ),
                        text=item.display_text,
                    ),
                    aug_sampling,
                )
                for item in todo
            ],
        )
        augmented = []
        for item, gen in zip(todo, gens, strict=True):
            results[item.pk].tokens += gen.tokens
            if gen.error:
                results[item.pk].failure = failure_from(gen)
                continue
            try:
                augmented.append((item, bt.instruction_parse(gen.text), gen.text))
            except ParseError as exc:
                results[item.pk].failure = self.unparseable(exc)
        cur_sampling = self.sampling(ctx, temperature=0.0, max_new_tokens=p["curate_max_new_tokens"])
        gens = self.generate(
            ctx,
            [
                (self.messages(t_cur, instruction=ins, text=item.display_text), cur_sampling)
                for item, ins, _ in augmented
            ],
        )
        for (item, instruction, raw_aug), gen in zip(augmented, gens, strict=True):
            result = results[item.pk]
            result.tokens += gen.tokens
            if gen.error:
                result.failure = failure_from(gen)
                continue
            try:
                curation = bt.curation_parse(gen.text)
            except ParseError as exc:
                result.failure = Failure(
                    "unparseable",
                    f"Self-curation: {exc.message} (instruction was: {instruction[:200]})",
                    exc.raw,
                )
                continue
            kept = bt.is_kept(curation.score, threshold=p["threshold"])
            auto = kept and p["route"] == "export"
            result.drafts.append(
                Draft(
                    sample=0,
                    text=instruction,
                    scores={
                        "curation_score": curation.score,
                        "curation_reasoning": curation.reasoning,
                        "threshold": p["threshold"],
                        "kept": kept,
                        "route": ("export" if auto else "review") if kept else "rejected",
                        "skip_review": not kept or auto,
                        "auto_accepted": auto,
                    },
                    provenance=self.provenance(
                        ctx,
                        [t_aug, t_cur],
                        sampling=aug_sampling,
                        curate_sampling=cur_sampling.as_dict(),
                        raw_augment=raw_aug,
                        raw_curate=gen.text,
                        pair={"instruction": "candidate.text", "output": "item.text"},
                    ),
                )
            )
        return list(results.values())
