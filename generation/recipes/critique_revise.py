"""critique_revise (Constitutional AI): for each item's draft, K rounds of critique -> revision, each
round against a principle sampled from the project's constitution (Project.options["constitution"];
the default has 16). The final revision is a candidate whose provenance holds every round (principle,
critique, revision); the pair (revision, original draft) becomes a compare task, and pairs
reviewers confirm export as DPO (rule "critique_revise").

The original draft is the item's latest model candidate from another recipe when it has one;
otherwise the recipe writes one first (sample 0) from the critique_revise_draft prompt. The
revision is sample 1; its provenance names the original candidate or sample.
"""

from __future__ import annotations

from annotation.models import Candidate, CandidateSource

from ..methods import ParseError
from ..methods import constitution as ca
from .base import Draft, Failure, ItemResult, RecipeContext, failure_from
from .method_base import MethodRecipe


def _existing_draft(item):
    return (
        Candidate.objects.filter(
            item=item, source__in=[CandidateSource.MODEL, CandidateSource.IMPORT, CandidateSource.EXTERNAL]
        )
        .exclude(recipe="critique_revise")
        .exclude(text="")
        .order_by("-id")
        .first()
    )


class CritiqueReviseRecipe(MethodRecipe):
    name = "critique_revise"
    title = "Critique and revise (constitution)"
    description = (
        "Constitutional AI (Bai et al. 2022): K rounds of critique and revision against principles sampled "
        "from the project's constitution; (revision, original) pairs go to the compare queue."
    )
    version = "1"
    method = ca

    def prompt_names(self, project) -> list[str]:
        return ["critique_revise_draft", "critique_revise_critique", "critique_revise_revision"]

    def params_check(self, *, project, params: dict) -> None:
        if not 1 <= params["rounds"] <= 8:
            raise self.invalid("rounds", "rounds is a whole number from 1 to 8 (the paper uses 4).")
        try:
            ca.constitution_for(project.options)
        except ValueError as exc:
            raise self.invalid("constitution", f"The project's constitution is invalid: {exc}") from None

    def sample_count(self, params: dict) -> int:
        return 2

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        rng = self.rng(ctx, items)
        principles = ca.constitution_for(ctx.project.options)
        t_draft = ctx.prompt("critique_revise_draft")
        t_crit = ctx.prompt("critique_revise_critique")
        t_rev = ctx.prompt("critique_revise_revision")
        results = {i.pk: ItemResult(item=i) for i in items}
        states = []
        need_draft = []
        for item in items:
            if 1 not in ctx.samples_for(item, 2):
                continue
            existing = _existing_draft(item)
            state = {"item": item, "prompt": item.prompt or item.display_text, "steps": [], "failed": False}
            if existing is not None:
                state.update(original=existing.text, original_ref={"candidate": existing.pk})
            else:
                need_draft.append(state)
            states.append(state)
        draft_sampling = self.sampling(ctx, temperature=0.7, max_new_tokens=p["draft_max_new_tokens"])
        gens = self.generate(
            ctx, [(self.messages(t_draft, prompt=s["prompt"]), draft_sampling) for s in need_draft]
        )
        for state, gen in zip(need_draft, gens, strict=True):
            result = results[state["item"].pk]
            result.tokens += gen.tokens
            if gen.error or not gen.text.strip():
                result.failure = (
                    failure_from(gen)
                    if gen.error
                    else Failure("unparseable", "The model wrote no draft.", gen.text)
                )
                state["failed"] = True
                continue
            state.update(original=gen.text.strip(), original_ref={"sample": 0})
            result.drafts.append(
                Draft(
                    sample=0,
                    text=gen.text.strip(),
                    scores={"critique_revise": "original"},
                    provenance=self.provenance(ctx, [t_draft], sampling=draft_sampling, role="original"),
                )
            )
        live = [s for s in states if not s["failed"]]
        crit_sampling = self.sampling(
            ctx, temperature=p["temperature"], max_new_tokens=p["critique_max_new_tokens"]
        )
        rev_sampling = self.sampling(ctx, temperature=p["temperature"], max_new_tokens=p["max_new_tokens"])
        for _round in range(p["rounds"]):
            for s in live:
                s["principle"] = ca.principle_sample(principles, rng=rng)
                s["current"] = s["steps"][-1]["revision"] if s["steps"] else s["original"]
            gens = self.generate(
                ctx,
                [
                    (
                        self.messages(
                            t_crit,
                            transcript=ca.transcript(s["prompt"], s["original"], s["steps"]),
                            critique_request=s["principle"]["critique"],
                        ),
                        crit_sampling,
                    )
                    for s in live
                ],
            )
            for s, gen in zip(live, gens, strict=True):
                results[s["item"].pk].tokens += gen.tokens
                try:
                    if gen.error:
                        raise ParseError(gen.error.message, raw=gen.text)
                    s["critique"] = ca.critique_parse(gen.text)
                except ParseError as exc:
                    results[s["item"].pk].failure = Failure(
                        "model_error" if gen.error else "unparseable",
                        f"Round {len(s['steps']) + 1} critique: {exc.message}",
                        exc.raw,
                    )
                    s["failed"] = True
            live = [s for s in live if not s["failed"]]
            gens = self.generate(
                ctx,
                [
                    (
                        self.messages(
                            t_rev,
                            transcript=ca.transcript(s["prompt"], s["original"], s["steps"]),
                            critique_request=s["principle"]["critique"],
                            critique=s["critique"],
                            revision_request=s["principle"]["revision"],
                        ),
                        rev_sampling,
                    )
                    for s in live
                ],
            )
            for s, gen in zip(live, gens, strict=True):
                results[s["item"].pk].tokens += gen.tokens
                try:
                    if gen.error:
                        raise ParseError(gen.error.message, raw=gen.text)
                    revision = ca.revision_parse(gen.text, previous=s["current"])
                except ParseError as exc:
                    results[s["item"].pk].failure = Failure(
                        "model_error" if gen.error else "unparseable",
                        f"Round {len(s['steps']) + 1} revision: {exc.message}",
                        exc.raw,
                    )
                    s["failed"] = True
                    continue
                s["steps"].append(
                    {
                        "principle": s["principle"]["name"],
                        "critique_request": s["principle"]["critique"],
                        "critique": s["critique"],
                        "revision_request": s["principle"]["revision"],
                        "revision": revision,
                    }
                )
            live = [s for s in live if not s["failed"]]
        for s in live:
            results[s["item"].pk].drafts.append(
                Draft(
                    sample=1,
                    text=s["steps"][-1]["revision"],
                    scores={
                        "critique_revise": "revision",
                        "rounds": len(s["steps"]),
                        "principles": [st["principle"] for st in s["steps"]],
                    },
                    provenance=self.provenance(
                        ctx,
                        [t_crit, t_rev],
                        sampling=rev_sampling,
                        role="revision",
                        original=s["original_ref"],
                        steps=s["steps"],
                        constitution=principles,
                    ),
                )
            )
        return list(results.values())
