"""Checks shared by import, the candidates API, generation and review: labels and spans against a
project, and the normalised text hash that finds eval prompts in training data."""

import hashlib
import re
import unicodedata

from .models import Project, TaskType

_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    # str.split() splits on exactly the characters the regex's \s matches (str.isspace), so this
    # equals _SPACE.sub(" ", ...).strip() at a fifth of the cost; import hashes every item.
    return " ".join(unicodedata.normalize("NFKC", text or "").split()).casefold()


def content_hash(text: str) -> str:
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def labels_validate(*, project: Project, labels) -> list[str]:
    """A label or list of labels, each from the project's label set. Raises ValueError."""
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("Labels must be a string or a list of strings.")
    unknown = [x for x in labels if x not in project.labels]
    if unknown:
        raise ValueError(
            f"Unknown label {unknown[0]!r}; this project's labels are: {', '.join(project.labels) or '(none)'}."
        )
    return list(dict.fromkeys(labels))


def spans_validate(*, project: Project, text: str, spans) -> list[dict]:
    """Character spans inside `text`, labelled from the project's set, sorted; overlapping spans only
    where the project allows them. Raises ValueError."""
    if not isinstance(spans, list):
        raise ValueError("Spans must be a list of {start, end, label}.")
    clean = []
    for index, span in enumerate(spans):
        if not isinstance(span, dict) or not {"start", "end", "label"} <= set(span):
            raise ValueError(f"Span {index + 1} needs start, end and label.")
        start, end, label = span["start"], span["end"], span["label"]
        if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool):
            raise ValueError(f"Span {index + 1}: start and end are character offsets (whole numbers).")
        if not 0 <= start < end <= len(text):
            raise ValueError(
                f"Span {index + 1} ({start}-{end}) is outside the text, which has {len(text)} characters."
            )
        if label not in project.labels:
            raise ValueError(f"Span {index + 1}: unknown label {label!r}.")
        clean.append({"start": start, "end": end, "label": label, "text": text[start:end]})
    clean.sort(key=lambda s: (s["start"], s["end"]))
    if not project.allow_overlapping_spans:
        for prev, cur in zip(clean, clean[1:], strict=False):
            if cur["start"] < prev["end"]:
                raise ValueError(
                    f"Spans {prev['start']}-{prev['end']} and {cur['start']}-{cur['end']} overlap; "
                    "this project does not allow overlapping spans."
                )
    return clean


def label_value_validate(*, project: Project, text: str, label):
    """A candidate's or reference's label for this project's task type (None allowed)."""
    if label is None or label == "" or label == []:
        return None
    if project.task_type == TaskType.NER:
        if isinstance(label, dict) and "spans" in label:
            label = label["spans"]
        return spans_validate(project=project, text=text, spans=label)
    if project.task_type == TaskType.CLASSIFICATION:
        if isinstance(label, dict) and "labels" in label:
            label = label["labels"]
        clean = labels_validate(project=project, labels=label)
        return clean[0] if len(clean) == 1 and isinstance(label, str) else clean
    return label
