"""self_instruct: new instructions and instances grown from the project's seed tasks.

The job runs over the project's items; each seed-task item in it is one request (that seed is one of
the 6 seeds in the 8-instruction prompt, with 2 machine-written ones). Every new instruction is
filtered; survivors are checked for novelty (ROUGE-L > threshold against any seed or accepted
instruction is rejected), classified, and given instances (output-first for classification).

What comes out is new items, made here (not candidates of the seed items):
- per kept instance an item (prompt = instruction, plus "Input: ..." when it has one) with one
  candidate (the output) that reviewers audit; its scores hold the 10 nearest instructions and
  their ROUGE-L;
- per rejected instruction an item marked done, with metadata["self_instruct"] = {"status":
  "rejected", "reason", "nearest"}: kept for the admin, never queued.
"""

from __future__ import annotations

from annotation.models import Item, ItemStatus
from synthlab.errors import ValidationFailed

from ..methods import ParseError
from ..methods import self_instruct as si
from ..seeds import SEED_KEY, seed_tasks
from .base import Failure, ItemResult, RecipeContext, failure_from
from .method_base import MethodRecipe, external_id_for, items_with_candidates_store

META = "self_instruct"
CLASSIFICATION_PREAMBLE = (
    "Come up with a series of classification tasks. Try to specify the possible output labels when possible."
)
PREAMBLE = "Come up with a series of tasks:"


def machine_instructions(project) -> list[str]:
    rows = Item.objects.filter(project=project, metadata__has_key=META).values_list("metadata", flat=True)
    seen = []
    for meta in rows:
        info = meta.get(META) or {}
        if info.get("status") == "accepted" and info.get("instruction") not in seen:
            seen.append(info["instruction"])
    return seen


class SelfInstructRecipe(MethodRecipe):
    name = "self_instruct"
    title = "Self-Instruct"
    description = (
        "New instructions and instances from the project's seed tasks (Wang et al. 2022): 8-instruction "
        "prompts, the paper's filters, ROUGE-L novelty (> 0.7 rejected), output-first instances for "
        "classification tasks. Rejected instructions are kept with the reason."
    )
    version = "1"
    method = si

    def prompt_names(self, project) -> list[str]:
        return [
            "self_instruct_instructions",
            "self_instruct_is_classification",
            "self_instruct_instances_classification",
            "self_instruct_instances_generation",
        ]

    def params_check(self, *, project, params: dict) -> None:
        if not 0 < params["rouge_threshold"] <= 1:
            raise self.invalid(
                "rouge_threshold", "rouge_threshold is a number in (0, 1]; the paper uses 0.7."
            )
        if not 0 <= params["num_machine_instructions"] < params["num_prompt_instructions"]:
            raise self.invalid(
                "num_machine_instructions", "num_machine_instructions must be below num_prompt_instructions."
            )
        if params["max_instances"] < 1:
            raise self.invalid("max_instances", "max_instances is at least 1.")
        seeds = Item.objects.filter(project=project, metadata__has_key=SEED_KEY).count()
        needed = params["num_prompt_instructions"] - params["num_machine_instructions"]
        if seeds < needed:
            raise ValidationFailed(
                f"Self-instruct needs at least {needed} seed tasks; this project has {seeds}. Import seed tasks "
                "(Self-Instruct's seed_tasks.jsonl format) first.",
                details=[{"field": "seed_tasks", "message": "Too few seed tasks."}],
            )

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        rng = self.rng(ctx, items)
        results = {item.pk: ItemResult(item=item) for item in items}
        seed_batch = [item for item in items if SEED_KEY in (item.metadata or {})]
        if not seed_batch:
            return list(results.values())
        seeds = seed_tasks(ctx.project)
        if p["classification_only"]:
            seeds = [t for t in seeds if t["is_classification"]] or seeds
        seed_instructions = [t["instruction"] for t in seeds]
        machine = machine_instructions(ctx.project)
        index = si.RougeIndex(seed_instructions + machine)
        t_inst = ctx.prompt("self_instruct_instructions")
        t_clf = ctx.prompt("self_instruct_is_classification")
        t_inst_clf = ctx.prompt("self_instruct_instances_classification")
        t_inst_gen = ctx.prompt("self_instruct_instances_generation")

        # 1. new instructions: one request per seed item in the batch
        sampling = self.sampling(
            ctx, temperature=p["temperature"], top_p=p["top_p"], max_new_tokens=p["max_new_tokens"]
        )
        requests, prompts_used = [], []
        for item in seed_batch:
            chosen = si.prompt_instructions_sample(
                [s for s in seed_instructions if s != item.prompt],
                machine,
                rng=rng,
                num_prompt_instructions=p["num_prompt_instructions"] - 1,
                num_machine_instructions=p["num_machine_instructions"],
            )
            chosen.insert(rng.randrange(len(chosen) + 1), item.prompt)
            prompts_used.append(chosen)
            requests.append(
                (
                    self.messages(
                        t_inst,
                        preamble=CLASSIFICATION_PREAMBLE if p["classification_only"] else PREAMBLE,
                        instruction_list=si.numbered_list(chosen),
                    ),
                    sampling,
                )
            )
        generations = self.generate(ctx, requests)

        rejected_rows, novel = [], []
        for item, chosen, gen in zip(seed_batch, prompts_used, generations, strict=True):
            result = results[item.pk]
            result.tokens += gen.tokens
            if gen.error:
                result.failure = failure_from(gen)
                continue
            parsed = si.instructions_parse(gen.text, first_number=len(chosen) + 1)
            if gen.finish_reason == "length" and "\n\n" not in gen.text.strip() and parsed:
                # cut off by length mid-list: the last instruction may be incomplete (the paper drops
                # the whole response; we drop what the cut can have damaged)
                cut = parsed.pop()
                rejected_rows.append(self._rejected(cut, "cut off by the length limit", item, gen.text, None))
            if not parsed:
                result.failure = Failure("unparseable", "The model wrote no instruction.", gen.text)
                continue
            for text in parsed:
                text = text[:1].upper() + text[1:]
                reason = si.instruction_filter(
                    text,
                    min_words=p["min_words"],
                    max_words=p["max_words"],
                    blacklist=p["blacklist"],
                    banned_prefixes=p["banned_prefixes"],
                )
                novelty = None
                if reason is None:
                    novelty = index.check(text, threshold=p["rouge_threshold"], k=p["nearest_k"])
                    if not novelty.is_novel:
                        reason = (
                            f"too similar to an existing instruction (ROUGE-L {novelty.max_rouge_l:.2f} > "
                            f"{p['rouge_threshold']})"
                        )
                if reason:
                    rejected_rows.append(self._rejected(text, reason, item, gen.text, novelty))
                    continue
                index.add(text)
                novel.append(
                    {
                        "instruction": text,
                        "novelty": novelty,
                        "seed_item": item,
                        "raw": gen.text,
                        "prompt_instructions": chosen,
                    }
                )

        # 2. classification or not (greedy, few-shot from the seeds' flags)
        greedy = self.sampling(ctx, temperature=0.0, max_new_tokens=4)
        clf_gens = self.generate(
            ctx,
            [
                (
                    self.messages(
                        t_clf,
                        examples=si.is_classification_examples(seeds, rng=rng),
                        instruction=si.instruction_clean(n["instruction"]),
                    ),
                    greedy,
                )
                for n in novel
            ],
        )
        for n, gen in zip(novel, clf_gens, strict=True):
            results[n["seed_item"].pk].tokens += gen.tokens
            try:
                n["is_classification"] = si.is_classification_parse(gen.text) if not gen.error else None
            except ParseError:
                n["is_classification"] = None
            n["is_classification_raw"] = gen.text
            if n["is_classification"] is None:
                # never guessed: the instruction is kept for the admin with the raw answer
                rejected_rows.append(
                    self._rejected(
                        n["instruction"],
                        "could not tell whether it is a classification task",
                        n["seed_item"],
                        gen.text,
                        n["novelty"],
                    )
                )
        novel = [n for n in novel if n["is_classification"] is not None]

        # 3. instances: output-first for classification, input-first otherwise
        inst_sampling = self.sampling(
            ctx, temperature=p["instance_temperature"], max_new_tokens=p["instance_max_new_tokens"]
        )
        inst_gens = self.generate(
            ctx,
            [
                (
                    self.messages(
                        t_inst_clf if n["is_classification"] else t_inst_gen,
                        examples=si.instance_examples(
                            seeds, is_classification=n["is_classification"], rng=rng
                        ),
                        instruction=si.instruction_clean(n["instruction"]),
                    ),
                    inst_sampling,
                )
                for n in novel
            ],
        )
        rows = []
        for n, gen in zip(novel, inst_gens, strict=True):
            results[n["seed_item"].pk].tokens += gen.tokens
            try:
                if gen.error:
                    raise ParseError(gen.error.message, raw=gen.text)
                instances = si.instances_parse(
                    gen.text,
                    is_classification=n["is_classification"],
                    prompt_tail="Class label:" if n["is_classification"] else "Input:",
                    truncated=gen.finish_reason == "length",
                )
            except ParseError as exc:
                rejected_rows.append(
                    self._rejected(
                        n["instruction"],
                        f"no usable instance: {exc.message}",
                        n["seed_item"],
                        gen.text,
                        n["novelty"],
                    )
                )
                continue
            kept, dropped = si.instances_filter(instances, rng=rng, max_instances=p["max_instances"])
            if not kept:
                reasons = sorted({d["reason"] for d in dropped})
                rejected_rows.append(
                    self._rejected(
                        n["instruction"],
                        "every instance was filtered out (" + "; ".join(reasons) + ")",
                        n["seed_item"],
                        gen.text,
                        n["novelty"],
                        dropped=dropped,
                    )
                )
                continue
            templates = [t_inst, t_clf, t_inst_clf if n["is_classification"] else t_inst_gen]
            for number, inst in enumerate(kept):
                prompt = n["instruction"] + (f"\n\nInput: {inst['input']}" if inst["input"] else "")
                meta = {
                    "status": "accepted",
                    "instruction": n["instruction"],
                    "input": inst["input"],
                    "is_classification": n["is_classification"],
                    "max_rouge_l": n["novelty"].max_rouge_l,
                    "nearest": n["novelty"].nearest,
                    "seed_item": n["seed_item"].pk,
                    "job": ctx.job_id,
                }
                rows.append(
                    {
                        "external_id": external_id_for("si", n["instruction"], inst["input"], inst["output"]),
                        "prompt": prompt,
                        "metadata": {META: meta},
                        "candidate": {
                            "text": inst["output"],
                            "scores": {
                                "max_rouge_l": n["novelty"].max_rouge_l,
                                "nearest": n["novelty"].nearest,
                                "is_classification": n["is_classification"],
                                "instance": number,
                                "instances_dropped": [d["reason"] for d in dropped],
                            },
                            "provenance": self.provenance(
                                ctx,
                                templates,
                                sampling=sampling,
                                instance_sampling=inst_sampling.as_dict(),
                                prompt_instructions=n["prompt_instructions"],
                                raw_instructions=n["raw"],
                                raw_is_classification=n["is_classification_raw"],
                                raw_instances=gen.text,
                                # presence_penalty is the paper's; backends without it ignore it
                                presence_penalty=p["presence_penalty"],
                            ),
                        },
                    }
                )
        items_with_candidates_store(
            project=ctx.project,
            recipe=self.name,
            rows=rows + rejected_rows,
            backend_info={**ctx.backend.describe(), "recipe_version": self.version},
            job_id=ctx.job_id,
        )
        return list(results.values())

    def _rejected(self, instruction, reason, seed_item, raw, novelty, dropped=None) -> dict:
        return {
            "external_id": external_id_for("si-rejected", instruction),
            "prompt": instruction,
            "status": ItemStatus.DONE,
            "metadata": {
                META: {
                    "status": "rejected",
                    "instruction": instruction,
                    "reason": reason,
                    "max_rouge_l": novelty.max_rouge_l if novelty else None,
                    "nearest": novelty.nearest if novelty else [],
                    "seed_item": seed_item.pk,
                    "raw_output": raw[:5000],
                    **({"instances_dropped": dropped} if dropped else {}),
                }
            },
        }
