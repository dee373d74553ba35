"""Document uploads for qa_from_document: a PDF or text file becomes chunk items.

Text is extracted with pypdf (PDF) or decoded (text), normalised and cut into chunks that keep
their character span in the extracted text. Each chunk is an item: text = the chunk, metadata
["document"] = {"id", "name", "chunk", "start", "end", "chunks"}. The document id is the sha256 of
the file's bytes (first 16 hex digits), so uploading the same file again updates its chunks instead
of duplicating them. Nothing is stored when the file cannot be read.
"""

from __future__ import annotations

import hashlib

from annotation.models import Item, ReviewMode, Split
from annotation.services.imports import items_import
from synthlab.errors import ValidationFailed

from .methods import documents as docs


def document_import(
    *,
    project,
    filename: str,
    data: bytes,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    user=None,
) -> dict:
    if len(data) > docs.MAX_DOCUMENT_BYTES:
        raise ValidationFailed(
            f"The file is over {docs.MAX_DOCUMENT_BYTES // (1024 * 1024)} MB; split it or upload a smaller one.",
            details=[{"field": "file", "message": "Too large."}],
        )
    size = docs.DEFAULTS["chunk_size"] if chunk_size in (None, "") else chunk_size
    overlap = docs.DEFAULTS["chunk_overlap"] if chunk_overlap in (None, "") else chunk_overlap
    try:
        size, overlap = int(size), int(overlap)
    except (TypeError, ValueError):
        raise ValidationFailed("chunk_size and chunk_overlap are whole numbers of characters.") from None
    name = (filename or "document").rsplit("/", 1)[-1]
    try:
        if name.lower().endswith(".pdf") or data[:5] == b"%PDF-":
            text = docs.pdf_text_extract(data)
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValueError("The file is neither a PDF nor UTF-8 text.") from None
        text = docs.text_normalise(text)
        if not text:
            raise ValueError("The document has no text.")
        chunks = docs.chunk_text(
            text, size=size, overlap=overlap, min_chars=min(docs.DEFAULTS["min_chunk_chars"], size // 2)
        )
    except ValueError as exc:
        raise ValidationFailed(str(exc), details=[{"field": "file", "message": str(exc)}]) from None
    doc_id = hashlib.sha256(data).hexdigest()[:16]
    result = items_import(
        project=project,
        user=user,
        rows=[
            (
                c.index + 1,
                {
                    "external_id": f"doc-{doc_id}-{c.index}",
                    "text": c.text,
                    "metadata": {
                        "document": {
                            "id": doc_id,
                            "name": name,
                            "chunk": c.index,
                            "start": c.start,
                            "end": c.end,
                            "chunks": len(chunks),
                            "chunk_size": size,
                            "chunk_overlap": overlap,
                        }
                    },
                },
            )
            for c in chunks
        ],
    )
    return {"document": doc_id, "name": name, "chunks": len(chunks), "characters": len(text), **result}


def accepted_qa_to_eval(*, project, min_rating: int = 4) -> int:
    """Moves chunk items whose question-answer pair reviewers accepted (rated >= min_rating, or
    edited) to the eval split; answers how many moved."""
    from annotation.models import Annotation

    accepted = set(
        Annotation.objects.filter(
            task__project=project,
            task__candidate_a__recipe="qa_from_document",
            mode=ReviewMode.RATE,
            rating__gte=min_rating,
        ).values_list("task__item_id", flat=True)
    ) | set(
        Annotation.objects.filter(
            task__project=project, task__candidate_a__recipe="qa_from_document", mode=ReviewMode.EDIT
        ).values_list("task__item_id", flat=True)
    )
    return (
        Item.objects.filter(project=project, pk__in=accepted)
        .exclude(split=Split.EVAL)
        .update(split=Split.EVAL)
    )
