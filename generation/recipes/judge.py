"""judge (LLM-as-judge, MT-Bench): the model rates candidates 1-5 against the project's rubric, or
compares the two candidates of each compare task in both orders (a win counts only when both orders
agree, else tie).

The judge is a distinct annotator, "model-judge". Its verdicts are stored on the judged candidates,
never as Annotation rows, so they cannot enter review queues, human agreement or exports:
- rate: candidate.scores["judge"] = {"annotator", "rating", "explanation", "job"};
- compare: candidate_a.scores["judge_compare"][<task key>] = {"annotator", "choice" ("a"/"b"/"tie",
  as the task shows them), "first", "swapped", "job"}.
generation.judging compares them with the human annotations on the same tasks.
"""

from __future__ import annotations

from django.db import transaction

from annotation.models import Candidate, CandidateSource, ReviewMode, ReviewTask

from ..methods import ParseError
from ..methods import judge as jd
from .base import Failure, ItemResult, RecipeContext
from .method_base import MethodRecipe


def rubric_text(project) -> str:
    rubric = project.rubric or {}
    return "\n".join(f"{k}: {rubric[k]}" for k in sorted(rubric))


class JudgeRecipe(MethodRecipe):
    name = "judge"
    title = "LLM-as-judge"
    description = (
        "The model rates candidates 1-5 with the rubric, or compares two in both orders (MT-Bench pair-v2). "
        "Stored as the annotator model-judge, apart from human annotations; the project page shows "
        "judge-human agreement."
    )
    version = "1"
    method = jd

    def prompt_names(self, project) -> list[str]:
        return ["judge_rate", "judge_compare"]

    def params_check(self, *, project, params: dict) -> None:
        if params["mode"] not in jd.MODES:
            raise self.invalid("mode", f"mode is one of: {', '.join(jd.MODES)}.")

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        results = {i.pk: ItemResult(item=i) for i in items}
        sampling = self.sampling(ctx, temperature=p["temperature"], max_new_tokens=p["max_new_tokens"])
        if p["mode"] == "rate":
            self._rate(ctx, items, results, sampling)
        else:
            self._compare(ctx, items, results, sampling, both_orders=p["both_orders"])
        return list(results.values())

    def _question(self, item) -> str:
        return item.prompt or item.display_text

    def _rate(self, ctx, items, results, sampling):
        template = ctx.prompt("judge_rate")
        cands = list(
            Candidate.objects.filter(item__in=items)
            .exclude(source=CandidateSource.HUMAN)
            .exclude(text="")
            .order_by("id")
        )
        by_pk = {i.pk: i for i in items}
        gens = self.generate(
            ctx,
            [
                (
                    self.messages(
                        template,
                        rubric=rubric_text(ctx.project),
                        prompt=self._question(by_pk[c.item_id]),
                        answer=c.text,
                    ),
                    sampling,
                )
                for c in cands
            ],
        )
        verdicts = {}
        for cand, gen in zip(cands, gens, strict=True):
            result = results[cand.item_id]
            result.tokens += gen.tokens
            try:
                if gen.error:
                    raise ParseError(gen.error.message, raw=gen.text)
                rating = jd.rating_parse(gen.text)
            except ParseError as exc:
                result.failure = result.failure or Failure(
                    "model_error" if gen.error else "unparseable",
                    f"Judging candidate {cand.pk}: {exc.message}",
                    exc.raw,
                )
                continue
            verdicts[cand.pk] = {
                "annotator": jd.JUDGE_USERNAME,
                "rating": rating,
                "explanation": gen.text[:4000],
                "job": ctx.job_id,
                "prompt": template.provenance(),
                "model": ctx.backend.describe().get("model"),
            }
        with transaction.atomic():
            for cand in Candidate.objects.select_for_update().filter(pk__in=list(verdicts)):
                cand.scores = {**(cand.scores or {}), "judge": verdicts[cand.pk]}
                cand.save(update_fields=["scores"])

    def _compare(self, ctx, items, results, sampling, *, both_orders: bool):
        template = ctx.prompt("judge_compare")
        tasks = list(
            ReviewTask.objects.filter(item__in=items, mode=ReviewMode.COMPARE)
            .select_related("candidate_a", "candidate_b", "item")
            .order_by("id")
        )
        requests = []
        for task in tasks:
            q = self._question(task.item)
            a, b = task.candidate_a.text, task.candidate_b.text
            requests.append((self.messages(template, prompt=q, answer_a=a, answer_b=b), sampling))
            if both_orders:
                requests.append((self.messages(template, prompt=q, answer_a=b, answer_b=a), sampling))
        gens = self.generate(ctx, requests)
        step = 2 if both_orders else 1
        verdicts = {}
        for n, task in enumerate(tasks):
            pair = gens[n * step : n * step + step]
            result = results[task.item_id]
            result.tokens += sum(g.tokens for g in pair)
            try:
                parsed = []
                for gen in pair:
                    if gen.error:
                        raise ParseError(gen.error.message, raw=gen.text)
                    parsed.append(jd.verdict_parse(gen.text))
            except ParseError as exc:
                result.failure = result.failure or Failure(
                    "unparseable", f"Judging task {task.pk}: {exc.message}", exc.raw
                )
                continue
            if both_orders:
                choice = jd.both_orders_combine(parsed[0], parsed[1])
            else:
                choice = {"A": "a", "B": "b", "tie": "tie"}[parsed[0]]
            verdicts.setdefault(task.candidate_a_id, {})[task.key] = {
                "annotator": jd.JUDGE_USERNAME,
                "task": task.pk,
                "choice": choice,
                "first": parsed[0],
                "swapped": parsed[1] if both_orders else None,
                "explanations": [g.text[:2000] for g in pair],
                "job": ctx.job_id,
                "prompt": template.provenance(),
            }
        with transaction.atomic():
            for cand in Candidate.objects.select_for_update().filter(pk__in=list(verdicts)):
                scores = dict(cand.scores or {})
                scores["judge_compare"] = {**(scores.get("judge_compare") or {}), **verdicts[cand.pk]}
                cand.scores = scores
                cand.save(update_fields=["scores"])
