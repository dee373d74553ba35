"""qa_from_document: one grounded question-answer pair per document chunk (Genstruct-style prompt).

Chunks are items made by generation.documents (upload a PDF or text file): item.text is the chunk,
metadata["document"] = {"id", "name", "chunk", "start", "end"}, the character span in the
extracted text. The candidate's text is "Question: ...\nAnswer: ..." so a reviewer edits both in one
box; scores hold the parts. Pairs failing the preparation filters are kept with the reason but
never queued. Accepted pairs can be moved to the eval split from the documents page.
"""

from __future__ import annotations

from ..methods import ParseError
from ..methods import documents as docs
from .base import Draft, ItemResult, RecipeContext, failure_from
from .method_base import MethodRecipe


def qa_text(question: str, answer: str) -> str:
    return f"Question: {question}\nAnswer: {answer}"


class QaFromDocumentRecipe(MethodRecipe):
    name = "qa_from_document"
    title = "Questions from documents"
    description = (
        "Question-answer pairs grounded in each document chunk (Genstruct prompt), with the H2O "
        "preparation filters; reviewers see the chunk beside the pair."
    )
    version = "1"
    method = docs

    def prompt_names(self, project) -> list[str]:
        return ["qa_from_document"]

    def params_check(self, *, project, params: dict) -> None:
        if not 1 <= params["pairs_per_chunk"] <= 8:
            raise self.invalid("pairs_per_chunk", "pairs_per_chunk is a whole number from 1 to 8.")

    def sample_count(self, params: dict) -> int:
        return int(params.get("pairs_per_chunk", 1))

    def run(self, *, ctx: RecipeContext, items: list) -> list[ItemResult]:
        p = self.method_params(ctx)
        template = ctx.prompt("qa_from_document")
        requests, owners = [], []
        for item in items:
            doc = (item.metadata or {}).get("document") or {}
            messages = self.messages(template, title=doc.get("name") or "Document", text=item.display_text)
            for n in ctx.samples_for(item, p["pairs_per_chunk"]):
                sampling = self.sampling(
                    ctx,
                    temperature=p["temperature"],
                    top_p=p["top_p"],
                    max_new_tokens=p["max_new_tokens"],
                    seed=ctx.sampling.seed + n,
                )
                requests.append((messages, sampling))
                owners.append((item, n, sampling))
        gens = self.generate(ctx, requests)
        results = {i.pk: ItemResult(item=i) for i in items}
        for (item, n, sampling), gen in zip(owners, gens, strict=True):
            result = results[item.pk]
            result.tokens += gen.tokens
            if gen.error:
                result.failure = result.failure or failure_from(gen)
                continue
            try:
                pair = docs.qa_parse(gen.text)
            except ParseError as exc:
                result.failure = result.failure or self.unparseable(exc)
                continue
            reason = docs.qa_reject_reason(pair, item.display_text, params=p)
            doc = (item.metadata or {}).get("document") or {}
            result.drafts.append(
                Draft(
                    sample=n,
                    text=qa_text(pair["question"], pair["answer"]),
                    scores={
                        "question": pair["question"],
                        "answer": pair["answer"],
                        "rejected": reason,
                        "skip_review": bool(reason),
                        "truncated": gen.finish_reason == "length",
                    },
                    provenance=self.provenance(
                        ctx,
                        [template],
                        sampling=sampling,
                        raw_output=gen.text,
                        document={k: doc.get(k) for k in ("id", "name", "chunk", "start", "end")},
                    ),
                )
            )
        return list(results.values())
