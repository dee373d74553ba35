"""candidates: N responses per item with varied sampling, for compare and rate queues.

Sample i uses temperature temperatures[i % len(temperatures)] and seed (seed + i), so the drafts
differ from each other and each one can be reproduced. Dedupe keys are candidates:0..N-1: running
the recipe again with a larger n adds only the new samples.
"""

from dataclasses import replace

from synthlab.errors import ValidationFailed

from ..backends import ChatRequest
from .base import Draft, Failure, ItemResult, Recipe, RecipeContext, chat_messages, failure_from
from .weak_label import item_values


class CandidatesRecipe(Recipe):
    name = "candidates"
    title = "Candidates"
    description = "Several responses per item with varied sampling, for the compare and rate queues."
    version = "1"
    defaults = {"n": 2, "temperatures": [0.7, 1.0], "top_p": 0.95, "max_new_tokens": 256}

    def prompt_names(self, project) -> list[str]:
        return ["candidates"]

    def params_clean(self, *, project, params: dict) -> dict:
        clean = super().params_clean(project=project, params=params)
        try:
            clean["n"] = int(clean["n"])
        except (TypeError, ValueError):
            clean["n"] = 0
        if not 1 <= clean["n"] <= 16:
            raise ValidationFailed(
                "n (responses per item) is a whole number from 1 to 16.",
                details=[{"field": "params.n", "message": "Out of range."}],
            )
        temps = clean["temperatures"]
        if isinstance(temps, str):
            temps = [part for part in temps.replace(",", " ").split() if part]
        try:
            temps = [float(t) for t in (temps if isinstance(temps, list) else [temps])]
        except (TypeError, ValueError):
            temps = []
        if not temps or any(t < 0 or t > 2 for t in temps):
            raise ValidationFailed(
                "temperatures is a list of numbers between 0 and 2, e.g. [0.7, 1.0].",
                details=[{"field": "params.temperatures", "message": "Invalid."}],
            )
        clean["temperatures"] = temps
        return clean

    def sample_count(self, params: dict) -> int:
        return int(params.get("n", 1))

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        template = ctx.prompt("candidates")
        temps = ctx.params["temperatures"]
        requests, owners = [], []
        for item in items:
            messages = chat_messages(template, item, **item_values(ctx.project, item))
            for index in ctx.samples_for(item, ctx.params["n"]):
                sampling = replace(
                    ctx.sampling, temperature=temps[index % len(temps)], seed=ctx.sampling.seed + index
                )
                requests.append(ChatRequest(messages=messages, sampling=sampling))
                owners.append((item, index, sampling))
        generations = ctx.backend.generate(requests)
        results = {item.pk: ItemResult(item=item) for item in items}
        for (item, index, sampling), generation in zip(owners, generations, strict=True):
            result = results[item.pk]
            result.tokens += generation.tokens
            if generation.error:
                result.failure = result.failure or failure_from(generation)
                continue
            text = generation.text.strip()
            if not text:
                result.failure = result.failure or Failure(
                    "unparseable", "The model answered nothing.", generation.text
                )
                continue
            result.drafts.append(
                Draft(
                    sample=index,
                    text=text,
                    scores={"truncated": generation.finish_reason == "length"},
                    provenance={
                        "prompt": template.provenance(),
                        "sampling": sampling.as_dict(),
                        "seed": sampling.seed,
                    },
                )
            )
        return list(results.values())
