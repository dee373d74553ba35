"""Questions from documents (Genstruct-style prompt; H2O LLM DataStudio filters).

Text is extracted with pypdf (or taken as is for text files) and cut into chunks that keep their
character span in the extracted text, so a reviewer sees exactly what the pair must be grounded in.
None of the sources fixes a chunk size: we default to 1,500 characters with 200 of overlap, which
fits the default model's context with room for the answer.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from . import ParseError

DEFAULTS = {
    "chunk_size": 1500,
    "chunk_overlap": 200,
    "min_chunk_chars": 200,  # shorter trailing chunks are merged into the previous one
    "temperature": 0.7,
    "top_p": 0.9,
    "max_new_tokens": 200,
    "pairs_per_chunk": 1,
    # H2O DataStudio preparation filters
    "min_question_chars": 10,
    "max_question_chars": 3000,
    "min_answer_chars": 10,
    "max_answer_chars": 5000,
}

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


@dataclass
class Chunk:
    index: int
    start: int
    end: int
    text: str


def pdf_text_extract(data: bytes) -> str:
    """All pages' text, pages separated by a blank line. Raises ValueError for a file pypdf cannot
    read, or one with no extractable text (a scan)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ValueError("The PDF is encrypted; upload an unencrypted copy.")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, OSError, KeyError, TypeError) as exc:
        raise ValueError(f"Could not read the PDF ({exc}). Upload a valid PDF file.") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise ValueError("The PDF has no extractable text (is it a scan?). Upload a text PDF.")
    return text


def text_normalise(text: str) -> str:
    """Line endings unified and runs of spaces collapsed; paragraphs kept."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def chunk_text(
    text: str,
    *,
    size: int = DEFAULTS["chunk_size"],
    overlap: int = DEFAULTS["chunk_overlap"],
    min_chars: int = DEFAULTS["min_chunk_chars"],
) -> list[Chunk]:
    """Chunks of at most `size` characters, consecutive chunks sharing about `overlap`; each ends at
    a paragraph, sentence or word break when one lies in its second half. `text[c.start:c.end] ==
    c.text` for every chunk."""
    if size <= 0:
        raise ValueError("Chunk size must be positive.")
    if not 0 <= overlap < size:
        raise ValueError("Chunk overlap must be at least 0 and smaller than the chunk size.")
    chunks: list[Chunk] = []
    start, n = 0, len(text)
    while start < n:
        end = min(start + size, n)
        if end < n:
            window = text[start:end]
            half = len(window) // 2
            for pattern in (r"\n\s*\n", r"(?<=[.!?])\s", r"\s"):
                breaks = [m.end() for m in re.finditer(pattern, window) if m.end() > half]
                if breaks:
                    end = start + breaks[-1]
                    break
        # trim surrounding whitespace but keep spans exact
        s, e = start, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            if chunks and e - s < min_chars and end >= n:
                last = chunks[-1]
                chunks[-1] = Chunk(index=last.index, start=last.start, end=e, text=text[last.start : e])
            else:
                chunks.append(Chunk(index=len(chunks), start=s, end=e, text=text[s:e]))
        if end >= n:
            break
        next_start = max(end - overlap, start + 1)
        # start the next chunk at a word boundary
        while 0 < next_start < end and not text[next_start - 1].isspace():
            next_start += 1
        start = next_start if next_start < end else end
    return chunks


# Genstruct: `(.+?)\[\[\[Assistant\]\]\](.+)$` splits the completion into user and assistant.
QA_RE = re.compile(r"(.+?)\[\[\[Assistant\]\]\](.+)$", re.DOTALL)
# The same two parts written with plain labels ("Question: ... Answer: ..."), which small models
# produce more often than the bracket markers.
QA_LABELLED_RE = re.compile(r"(.+?)\n\s*Answer\s*:(.+)$", re.DOTALL)


def qa_parse(completion: str) -> dict:
    """{"question", "answer"} from a completion that continues "[[[User]]] ". A following
    "[[[User]]]" turn is cut off. No "[[[Assistant]]]" marker: ParseError."""
    match = QA_RE.search(completion.strip()) or QA_LABELLED_RE.search(completion.strip())
    if not match:
        raise ParseError('Expected the question, then "[[[Assistant]]]" and the answer.', raw=completion)
    question = re.sub(r"^\s*Question\s*:\s*", "", match.group(1), flags=re.IGNORECASE).strip()
    answer = re.split(r"\[\[\[(?:User|Title|Content)\]\]\]|\n\s*Question\s*:", match.group(2))[0].strip()
    if not question or not answer:
        raise ParseError("The question or the answer is empty.", raw=completion)
    return {"question": question, "answer": answer}


_QUESTION_WORDS = (
    "what",
    "why",
    "how",
    "when",
    "where",
    "who",
    "whom",
    "whose",
    "which",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "will",
    "has",
    "have",
    "had",
    "explain",
    "describe",
    "compare",
    "according",
    "in",
    "based",
    "name",
    "list",
)


def qa_reject_reason(pair: dict, chunk_text_: str, *, params: dict | None = None) -> str | None:
    """The preparation filters: lengths (question 10-3000, answer 10-5000 characters) and a check that
    the question is a question."""
    p = {**DEFAULTS, **(params or {})}
    q, a = pair["question"], pair["answer"]
    if len(q) < p["min_question_chars"]:
        return f"question shorter than {p['min_question_chars']} characters"
    if len(q) > p["max_question_chars"]:
        return f"question longer than {p['max_question_chars']} characters"
    if len(a) < p["min_answer_chars"]:
        return f"answer shorter than {p['min_answer_chars']} characters"
    if len(a) > p["max_answer_chars"]:
        return f"answer longer than {p['max_answer_chars']} characters"
    first = q.split()[0].lower().strip(",:") if q.split() else ""
    if not q.rstrip().endswith("?") and first not in _QUESTION_WORDS:
        return "the question is not phrased as a question"
    return None
