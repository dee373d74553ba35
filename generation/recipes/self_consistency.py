"""self_consistency: N sampled answers per item, normalised and majority-voted; the agreement rate
(answers reaching the vote / N) is the candidate's confidence.

Classification projects vote over the project's labels (an answer naming no label, or several,
is no vote); other task types vote over the normalised answer text. Items at or above
auto_accept_threshold skip review (scores["auto_accepted"]), except a random calibration_sample
share of them, which reviewers still see so the project page can show how often auto-accepted
answers match reviewers. See generation.methods.self_consistency for the choice of N.
"""

from __future__ import annotations

from annotation.models import TaskType

from ..methods import ParseError
from ..methods import self_consistency as sc
from .base import Draft, Failure, ItemResult, RecipeContext
from .method_base import MethodRecipe

TASKS = {
    TaskType.CLASSIFICATION: "Classify the text into exactly one of these labels: {labels}.",
    TaskType.QA: "Answer the question briefly.",
    TaskType.INSTRUCTION: "Answer the request briefly.",
    TaskType.NER: "List the named entities in the text.",
}
COT = "Think step by step, then "


class SelfConsistencyRecipe(MethodRecipe):
    name = "self_consistency"
    title = "Self-consistency"
    description = (
        "N sampled answers per item, majority vote (Wang et al. 2022); the agreement rate is the confidence. "
        "Items above the auto-accept threshold skip review; a calibration sample of them is still reviewed."
    )
    version = "1"
    method = sc
    task_types = (TaskType.CLASSIFICATION, TaskType.QA, TaskType.INSTRUCTION)

    def prompt_names(self, project) -> list[str]:
        return ["self_consistency"]

    def params_check(self, *, project, params: dict) -> None:
        if not 1 <= params["samples"] <= 64:
            raise self.invalid("samples", "samples is a whole number from 1 to 64 (the paper uses 40).")
        if not 0 < params["auto_accept_threshold"] <= 1.0:
            raise self.invalid("auto_accept_threshold", "auto_accept_threshold is a share in (0, 1].")
        if not 0 <= params["calibration_sample"] <= 1:
            raise self.invalid("calibration_sample", "calibration_sample is a share from 0 to 1.")
        if project.task_type == TaskType.CLASSIFICATION and not project.labels:
            raise self.invalid("labels", "Add the project's labels first: the vote is over them.")

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        rng = self.rng(ctx, items)
        project = ctx.project
        labels = list(project.labels) if project.task_type == TaskType.CLASSIFICATION else None
        template = ctx.prompt("self_consistency")
        todo = [i for i in items if 0 in ctx.samples_for(i, 1)]
        requests, owners = [], []
        for item in todo:
            messages = self.messages(
                template,
                task=TASKS.get(project.task_type, TASKS[TaskType.INSTRUCTION]).replace(
                    "{labels}", ", ".join(project.labels)
                ),
                text=item.display_text,
                labels=", ".join(project.labels),
                guidelines=project.guidelines,
                reasoning=COT if p["chain_of_thought"] else "",
            )
            for n in range(p["samples"]):
                sampling = self.sampling(
                    ctx,
                    temperature=p["temperature"],
                    top_k=p["top_k"],
                    max_new_tokens=p["max_new_tokens"],
                    seed=ctx.sampling.seed + n,
                )
                requests.append((messages, sampling))
                owners.append(item)
        gens = self.generate(ctx, requests)
        by_item: dict[int, list] = {i.pk: [] for i in todo}
        for item, gen in zip(owners, gens, strict=True):
            by_item[item.pk].append(gen)
        results = {i.pk: ItemResult(item=i) for i in items}
        for item in todo:
            result = results[item.pk]
            answers, raws, shown = [], [], {}
            errors = []
            for gen in by_item[item.pk]:
                result.tokens += gen.tokens
                raws.append(gen.text)
                if gen.error:
                    errors.append(gen.error.message)
                    answers.append(None)
                    continue
                try:
                    answer = sc.answer_extract(gen.text, marker=p["answer_marker"], numeric=p["numeric"])
                except ParseError:
                    answers.append(None)
                    continue
                norm = sc.answer_normalise(answer, labels=labels)
                answers.append(norm)
                if norm is not None:
                    shown.setdefault(norm, answer)
            vote = sc.majority_vote(answers)
            if vote.answer is None:
                message = (
                    f"None of the {len(answers)} samples gave an answer in the expected form"
                    + (f" (one of: {', '.join(labels)})" if labels else "")
                    + (f"; model errors: {errors[0]}" if errors else ".")
                )
                result.failure = Failure(
                    "model_error" if len(errors) == len(answers) else "unparseable",
                    message,
                    "\n---\n".join(raws),
                )
                continue
            route = sc.route(vote.agreement, threshold=p["auto_accept_threshold"])
            calibration = route == "auto_accept" and rng.random() < p["calibration_sample"]
            auto = route == "auto_accept" and not calibration
            result.drafts.append(
                Draft(
                    sample=0,
                    text="" if labels else shown[vote.answer],
                    label=vote.answer if labels else None,
                    scores={
                        "agreement": vote.agreement,
                        "confidence": vote.agreement,
                        "votes": vote.distribution,
                        "samples": vote.total,
                        "parsed": sum(1 for a in answers if a is not None),
                        "route": route,
                        "auto_accepted": auto,
                        "calibration_sample": calibration,
                        "skip_review": auto,
                    },
                    provenance=self.provenance(ctx, [template], raw_samples=raws, answers=answers),
                )
            )
        return list(results.values())
