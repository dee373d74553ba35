"""Documents: pypdf extraction, chunking with exact character spans, QA parsing and filters."""

import pytest

from generation.methods import ParseError
from generation.methods import documents as docs

from .pdfs import minimal_pdf


def test_pdf_text_is_extracted_page_by_page():
    data = minimal_pdf([["The pump moves water.", "It runs on diesel."], ["Page two speaks of valves."]])
    assert (
        docs.pdf_text_extract(data)
        == "The pump moves water.\nIt runs on diesel.\n\nPage two speaks of valves."
    )


def test_a_broken_pdf_is_a_clear_error():
    with pytest.raises(ValueError, match="Could not read the PDF"):
        docs.pdf_text_extract(b"%PDF-1.4 this is not really a pdf")


def test_chunks_keep_exact_spans_overlap_and_break_at_sentences():
    text = " ".join(f"Sentence number {n} is here." for n in range(200))
    chunks = docs.chunk_text(text, size=300, overlap=50, min_chars=50)
    assert len(chunks) > 10
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert len(c.text) <= 300
        assert c.text.endswith(".")  # a sentence break lay in the second half of every window
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start < prev.end  # overlapping
        assert prev.end - nxt.start <= 60
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_a_short_tail_merges_into_the_last_chunk():
    text = "a" * 95 + " " + "b" * 10
    chunks = docs.chunk_text(text, size=100, overlap=0, min_chars=50)
    assert len(chunks) == 1 and chunks[0].text == text


def test_bad_chunk_settings_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        docs.chunk_text("text", size=100, overlap=100)


def test_genstruct_style_parsing():
    pair = docs.qa_parse("What does the pump burn? [[[Assistant]]] Diesel, per the text.\n[[[User]]] next")
    assert pair == {"question": "What does the pump burn?", "answer": "Diesel, per the text."}
    labelled = docs.qa_parse("Question: Why diesel?\nAnswer: Because it is cheap.\nQuestion: more")
    assert labelled == {"question": "Why diesel?", "answer": "Because it is cheap."}
    with pytest.raises(ParseError):
        docs.qa_parse("The pump burns diesel.")


def test_preparation_filters():
    ok = {"question": "What does the pump burn?", "answer": "It burns diesel fuel."}
    assert docs.qa_reject_reason(ok, "") is None
    assert docs.qa_reject_reason({**ok, "question": "Why?"}, "") == "question shorter than 10 characters"
    assert docs.qa_reject_reason({**ok, "answer": "Diesel"}, "") == "answer shorter than 10 characters"
    assert (
        docs.qa_reject_reason({**ok, "question": "The pump burns diesel fuel."}, "")
        == "the question is not phrased as a question"
    )
