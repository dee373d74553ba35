"""The interface every recipe implements, and what it hands back to the job runner.

A recipe turns a batch of items into drafts (future Candidates) or failures. The runner
(generation.services.job_run) does everything around it: it picks the items still to do, calls
`run` one batch at a time, stores each Draft as a Candidate with dedupe key
"<recipe name>:<sample index>" (so a rerun or a redelivered task never stores it twice) and full
provenance, stores each Failure with the model's raw output, creates review tasks, reports progress
and stops when the job is cancelled.

To add a recipe (self_instruct, backtranslation, self_consistency, critique_revise,
qa_from_document, rationale, sycophancy, judge, ...):

1. Write `generation/recipes/<name>.py` with a subclass of Recipe:
   - `name` (the API's recipe string), `title`, `description`, `version` (bump it when the
     recipe's logic changes; provenance records it), `task_types` (None for all);
   - `defaults`: its parameters and their defaults (shown on the job form);
   - `prompt_names(project)`: the prompt templates it uses, files in generation/prompts/ (the job
     form shows them; projects override them in Project.options["prompts"]);
   - `params_clean(project=..., params=...)`: check and complete the parameters, raising
     ValidationFailed with what to fix (call super() for the shared sampling parameters);
   - `sample_count(params)`: how many drafts one item yields (sample indexes 0..n-1);
   - `run(ctx=..., items=...)`: one ItemResult per item, never raising for one bad item:
     model errors, timeouts and unparseable output become a Failure with the raw output.
     Call the model through `ctx.backend` (generate / score) and get prompts with `ctx.prompt(name)`.
2. Register it in generation/recipes/__init__.py (RECIPES).

A recipe that makes new items rather than candidates for existing ones (self_instruct) can create
them in `run` through annotation's import service and return drafts for them as usual.
"""

from dataclasses import dataclass, field
from typing import Any

from synthlab.errors import ValidationFailed

from ..backends import BaseBackend, Generation, Sampling
from ..prompts import PromptTemplate, prompt_get


@dataclass
class Draft:
    sample: int = 0
    text: str = ""
    label: Any = None
    scores: dict = field(default_factory=dict)
    # Added to the candidate's provenance: prompt, sampling, seed and anything recipe-specific.
    provenance: dict = field(default_factory=dict)


@dataclass
class Failure:
    reason: str  # timeout | unparseable | model_error
    message: str
    raw_output: str = ""


@dataclass
class ItemResult:
    item: Any
    drafts: list[Draft] = field(default_factory=list)
    failure: Failure | None = None
    tokens: int = 0


@dataclass
class RecipeContext:
    project: Any
    params: dict
    backend: BaseBackend
    sampling: Sampling
    job_id: int | None = None
    # {item id: sample indexes still missing}; None means all of them.
    pending: dict[int, list[int]] | None = None

    def samples_for(self, item, count: int) -> list[int]:
        if self.pending is not None and item.pk in self.pending:
            return self.pending[item.pk]
        return list(range(count))

    def prompt(self, name: str) -> PromptTemplate:
        return prompt_get(name=name, project=self.project)


def failure_from(generation: Generation) -> Failure:
    error = generation.error
    return Failure(reason=error.reason, message=error.message, raw_output=generation.text or "")


class Recipe:
    name = ""
    title = ""
    description = ""
    version = "1"
    task_types: tuple[str, ...] | None = None
    defaults: dict = {}

    def prompt_names(self, project) -> list[str]:
        return []

    def params_clean(self, *, project, params: dict) -> dict:
        """Parameters with defaults filled in. Shared ones: the sampling parameters
        (temperature, top_p, top_k, max_new_tokens, repetition_penalty, seed, timeout), taken over
        the project's model_settings["sampling"], and batch_size."""
        if not isinstance(params, dict):
            raise ValidationFailed(
                "params must be an object.", details=[{"field": "params", "message": "Invalid."}]
            )
        if self.task_types and project.task_type not in self.task_types:
            raise ValidationFailed(
                f"The {self.name} recipe works on {', '.join(self.task_types)} projects, not {project.task_type}.",
                details=[{"field": "recipe", "message": "Not for this task type."}],
            )
        clean = {**self.defaults, **{k: v for k, v in params.items() if v not in (None, "")}}
        try:
            base = Sampling.from_dict((project.model_settings or {}).get("sampling"))
            sampling = Sampling.from_dict(clean, base=base)
        except ValueError as exc:
            raise ValidationFailed(str(exc), details=[{"field": "params", "message": str(exc)}]) from None
        clean.update({k: v for k, v in sampling.as_dict().items()})
        if "batch_size" in clean:
            try:
                clean["batch_size"] = int(clean["batch_size"])
            except (TypeError, ValueError):
                clean["batch_size"] = 0
            if not 1 <= clean["batch_size"] <= 512:
                raise ValidationFailed(
                    "batch_size is a whole number from 1 to 512.",
                    details=[{"field": "params.batch_size", "message": "Out of range."}],
                )
        return clean

    def sample_count(self, params: dict) -> int:
        return 1

    def dedupe_keys(self, params: dict) -> list[str]:
        return [f"{self.name}:{index}" for index in range(self.sample_count(params))]

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        raise NotImplementedError


def chat_messages(template: PromptTemplate, item, **values) -> list[dict]:
    """The conversation for an item: its own messages when it is a chat (with the template's
    system message first when it has none), else the template filled with `values`."""
    if item.messages:
        messages = [dict(m) for m in item.messages if isinstance(m, dict) and "role" in m and "content" in m]
        rendered = template.render(**values)
        if rendered[0]["role"] == "system" and messages and messages[0]["role"] != "system":
            messages.insert(0, rendered[0])
        return messages
    return template.render(**values)
