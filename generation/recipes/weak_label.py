"""weak_label: one drafted label or answer per item, for reviewers to accept, correct or reject.

- classification: every label in the project's set is scored as the model's complete answer; the
  confidence is the softmax over those log-likelihoods (never parsed from free text), and the
  label is the most likely one. By default the log-likelihoods are first calibrated against a
  content-free input ("N/A"), which removes the prompt's bias towards one label (Zhao et al. 2021);
  params {"calibrate": false} turns that off. Reviewers can sort by scores["confidence"].
- ner: the model lists entities as JSON; each is located in the text (offsets repaired by string
  search or rejected, never stored wrong).
- qa: an answer from the item's context (item text or metadata "context") to its question (item
  prompt or metadata "question").
- instruction: a response to the item's prompt or chat.
"""

import json
import re

from annotation.models import TaskType
from annotation.validation import spans_validate
from synthlab.errors import ValidationFailed

from ..backends import BackendError, ChatRequest
from ..parsing import json_list_parse, ner_spans_repair, softmax
from .base import Draft, Failure, ItemResult, Recipe, RecipeContext, chat_messages, failure_from

_WORD = re.compile(r"\w+")


def item_values(project, item) -> dict:
    metadata = item.metadata or {}
    return {
        "text": item.display_text,
        "prompt": item.prompt or item.display_text,
        "question": item.prompt or str(metadata.get("question") or ""),
        "context": item.text or str(metadata.get("context") or ""),
        "labels": ", ".join(project.labels),
        "labels_json": json.dumps(project.labels),
        "guidelines": project.guidelines,
        "task_type": project.task_type,
        "project": project.name,
    }


class WeakLabelRecipe(Recipe):
    name = "weak_label"
    title = "Weak labels"
    description = (
        "The model drafts one label (classification, with a log-likelihood confidence), entity spans "
        "(NER), an answer from the context (QA) or a response (instruction) per item."
    )
    version = "1"
    defaults = {"temperature": 0.0, "max_new_tokens": 256, "calibrate": True}

    def prompt_names(self, project) -> list[str]:
        return [f"weak_label_{project.task_type}"]

    def params_clean(self, *, project, params: dict) -> dict:
        if project.task_type in (TaskType.CLASSIFICATION, TaskType.NER) and not project.labels:
            raise ValidationFailed(
                "This project has no labels yet; add them in the project settings first.",
                details=[{"field": "labels", "message": "Required."}],
            )
        clean = super().params_clean(project=project, params=params)
        clean["calibrate"] = clean.get("calibrate") not in (False, "false", "0", 0, "off", "no")
        return clean

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        runner = {
            TaskType.CLASSIFICATION: self._classify,
            TaskType.NER: self._ner,
            TaskType.QA: self._qa,
        }.get(ctx.project.task_type, self._instruction)
        return runner(ctx, items)

    def _provenance(self, ctx, template, sampling=None) -> dict:
        return {
            "prompt": template.provenance(),
            "sampling": (sampling or ctx.sampling).as_dict(),
            "seed": (sampling or ctx.sampling).seed,
        }

    # classification -------------------------------------------------------------------------------

    def _classify(self, ctx: RecipeContext, items: list) -> list[ItemResult]:
        template = ctx.prompt(self.prompt_names(ctx.project)[0])
        labels = list(ctx.project.labels)
        questions = [(template.render(**item_values(ctx.project, item)), labels) for item in items]
        calibrate = bool(ctx.params.get("calibrate", True))
        if calibrate:
            # Contextual calibration: the label bias of this prompt, measured on a content-free input.
            questions.append(
                (template.render(**{**item_values(ctx.project, items[0]), "text": "N/A"}), labels)
            )
        all_scores = self._score(ctx, questions)
        baseline = all_scores.pop() if calibrate else None
        if isinstance(baseline, BackendError):
            baseline = None
        method = "softmax over label log-likelihoods" + (
            " minus those of a content-free input (contextual calibration)" if baseline else ""
        )
        results = []
        for item, scores in zip(items, all_scores, strict=True):
            if isinstance(scores, BackendError):
                results.append(ItemResult(item=item, failure=Failure(scores.reason, scores.message)))
                continue
            raw_probs = softmax(scores)
            probs = softmax([s - b for s, b in zip(scores, baseline, strict=True)]) if baseline else raw_probs
            best = max(range(len(labels)), key=lambda i: probs[i])
            draft_scores = {
                "confidence": round(probs[best], 6),
                "label_probs": {label: round(p, 6) for label, p in zip(labels, probs, strict=True)},
                "log_likelihood": {label: round(s, 4) for label, s in zip(labels, scores, strict=True)},
            }
            if baseline:
                draft_scores["uncalibrated_probs"] = {
                    label: round(p, 6) for label, p in zip(labels, raw_probs, strict=True)
                }
            draft = Draft(
                label=labels[best],
                scores=draft_scores,
                provenance={**self._provenance(ctx, template), "confidence_method": method},
            )
            results.append(ItemResult(item=item, drafts=[draft]))
        return results

    @staticmethod
    def _score(ctx, questions) -> list:
        try:
            if hasattr(ctx.backend, "score_batch"):
                return list(ctx.backend.score_batch(questions))
            return [ctx.backend.score(messages, conts) for messages, conts in questions]
        except BackendError:
            # One bad item must not sink the batch: score item by item to find it.
            scores = []
            for messages, conts in questions:
                try:
                    scores.append(ctx.backend.score(messages, conts))
                except BackendError as exc:
                    scores.append(exc)
            return scores

    # generated answers ----------------------------------------------------------------------------

    def _generate(self, ctx, items, template_name):
        template = ctx.prompt(template_name)
        requests = [
            ChatRequest(
                messages=chat_messages(template, item, **item_values(ctx.project, item)),
                sampling=ctx.sampling,
            )
            for item in items
        ]
        return template, ctx.backend.generate(requests)

    def _ner(self, ctx: RecipeContext, items: list) -> list[ItemResult]:
        template, generations = self._generate(ctx, items, "weak_label_ner")
        results = []
        for item, generation in zip(items, generations, strict=True):
            result = ItemResult(item=item, tokens=generation.tokens)
            results.append(result)
            if generation.error:
                result.failure = failure_from(generation)
                continue
            try:
                proposed = json_list_parse(generation.text)
            except ValueError:
                cut = " (cut off at max_new_tokens)" if generation.finish_reason == "length" else ""
                result.failure = Failure(
                    "unparseable", f"The answer is not a JSON list of entities{cut}.", generation.text
                )
                continue
            text = item.display_text
            spans, rejected = ner_spans_repair(
                text=text,
                proposed=proposed,
                labels=list(ctx.project.labels),
                allow_overlap=ctx.project.allow_overlapping_spans,
            )
            if proposed and not spans:
                result.failure = Failure(
                    "unparseable",
                    f"None of the {len(proposed)} entities the model gave is in the text with a known "
                    f"label ({rejected[0]['why']}).",
                    generation.text,
                )
                continue
            try:
                spans = spans_validate(project=ctx.project, text=text, spans=spans)
            except ValueError as exc:  # ner_spans_repair should make this impossible
                result.failure = Failure("unparseable", str(exc), generation.text)
                continue
            result.drafts.append(
                Draft(
                    label=spans,
                    scores={"spans_kept": len(spans), "spans_rejected": len(rejected)},
                    provenance={
                        **self._provenance(ctx, template),
                        "raw_output": generation.text,
                        "rejected_spans": rejected[:20],
                    },
                )
            )
        return results

    def _texts(self, ctx, items, template_name, scorer=None) -> list[ItemResult]:
        template, generations = self._generate(ctx, items, template_name)
        results = []
        for item, generation in zip(items, generations, strict=True):
            result = ItemResult(item=item, tokens=generation.tokens)
            results.append(result)
            if generation.error:
                result.failure = failure_from(generation)
                continue
            answer = generation.text.strip()
            if not answer:
                result.failure = Failure("unparseable", "The model answered nothing.", generation.text)
                continue
            scores = {"truncated": generation.finish_reason == "length"}
            if scorer:
                scores.update(scorer(item, answer))
            result.drafts.append(
                Draft(text=answer, scores=scores, provenance=self._provenance(ctx, template))
            )
        return results

    def _qa(self, ctx: RecipeContext, items: list) -> list[ItemResult]:
        results: list[ItemResult] = []
        answerable = []
        for item in items:
            values = item_values(ctx.project, item)
            if not values["question"].strip() or not values["context"].strip():
                results.append(
                    ItemResult(
                        item=item,
                        failure=Failure(
                            "model_error",
                            "A QA item needs a question (prompt or metadata.question) and a context "
                            "(text or metadata.context).",
                        ),
                    )
                )
            else:
                answerable.append(item)

        def grounding(item, answer):
            context = {w.casefold() for w in _WORD.findall(item_values(ctx.project, item)["context"])}
            words = [w.casefold() for w in _WORD.findall(answer)]
            share = sum(w in context for w in words) / len(words) if words else 0.0
            return {"context_overlap": round(share, 4)}

        if answerable:
            results.extend(self._texts(ctx, answerable, "weak_label_qa", scorer=grounding))
        order = {item.pk: n for n, item in enumerate(items)}
        return sorted(results, key=lambda r: order[r.item.pk])

    def _instruction(self, ctx: RecipeContext, items: list) -> list[ItemResult]:
        return self._texts(ctx, items, "weak_label_instruction")
