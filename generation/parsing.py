"""Turning model text into labels that are right or rejected, never stored wrong."""

import json
import math
import re

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def softmax(values: list[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def json_list_parse(text: str) -> list:
    """The first JSON list in `text` (code fences allowed). Raises ValueError when there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        start = chunk.find("[")
        while start != -1:
            try:
                value, _ = json.JSONDecoder().raw_decode(chunk[start:])
            except ValueError:
                start = chunk.find("[", start + 1)
                continue
            if isinstance(value, list):
                return value
            start = chunk.find("[", start + 1)
    raise ValueError("The answer holds no JSON list.")


def _label_match(label, labels: list[str]) -> str | None:
    if not isinstance(label, str):
        return None
    if label in labels:
        return label
    folded = {x.casefold(): x for x in labels}
    return folded.get(label.strip().casefold())


def _occurrences(text: str, needle: str) -> list[int]:
    found, start = [], text.find(needle)
    while start != -1:
        found.append(start)
        start = text.find(needle, start + 1)
    if not found:
        lowered, target = text.casefold(), needle.casefold()
        if len(lowered) == len(text):  # casefold kept offsets
            start = lowered.find(target)
            while start != -1:
                found.append(start)
                start = lowered.find(target, start + 1)
    return found


def ner_spans_repair(
    *, text: str, proposed: list, labels: list[str], allow_overlap: bool = False
) -> tuple[list[dict], list[dict]]:
    """Spans the model proposed, checked against `text`: (kept, rejected).

    An entry is {"text", "label"} and may carry "start"/"end". Offsets are kept only when they
    point at exactly that text; otherwise the entity is found by string search (the occurrence
    nearest the given start, else the first one not already taken). An entity that is not in the
    text, has an unknown label, or overlaps a kept span (unless the project allows it) is rejected
    with the reason.
    """
    kept: list[dict] = []
    rejected: list[dict] = []
    taken: set[tuple[int, int]] = set()
    for entry in proposed:
        if not isinstance(entry, dict):
            rejected.append({"entry": entry, "why": "not an object"})
            continue
        label = _label_match(entry.get("label", entry.get("type")), labels)
        if label is None:
            rejected.append({"entry": entry, "why": "unknown label"})
            continue
        surface = entry.get("text", entry.get("entity"))
        surface = surface.strip() if isinstance(surface, str) else None
        start, end = entry.get("start"), entry.get("end")
        offsets_ok = (
            isinstance(start, int)
            and isinstance(end, int)
            and not isinstance(start, bool)
            and 0 <= start < end <= len(text)
            and (surface is None or text[start:end] == surface)
        )
        if offsets_ok:
            span = (start, end)
        elif surface:
            places = [p for p in _occurrences(text, surface) if (p, p + len(surface)) not in taken]
            if not places:
                rejected.append({"entry": entry, "why": "not in the text"})
                continue
            if isinstance(start, int) and not isinstance(start, bool):
                place = min(places, key=lambda p: abs(p - start))
            else:
                place = places[0]
            span = (place, place + len(surface))
        else:
            rejected.append({"entry": entry, "why": "no text and no valid offsets"})
            continue
        if span in taken:
            continue
        taken.add(span)
        kept.append({"start": span[0], "end": span[1], "label": label})
    kept.sort(key=lambda s: (s["start"], s["end"]))
    if not allow_overlap:
        clean: list[dict] = []
        for span in kept:
            if clean and span["start"] < clean[-1]["end"]:
                rejected.append(
                    {"entry": {**span, "text": text[span["start"] : span["end"]]}, "why": "overlaps"}
                )
                continue
            clean.append(span)
        kept = clean
    return kept, rejected


def db_safe(value):
    """`value` with NUL characters replaced by U+FFFD: model output can contain them, and
    PostgreSQL text and jsonb cannot store them."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [db_safe(v) for v in value]
    if isinstance(value, dict):
        return {db_safe(k): db_safe(v) for k, v in value.items()}
    return value
