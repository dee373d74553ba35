"""Writes and reads behind the method pages: the project's constitution (one principle per line) and
the backtranslation pairs of the curator's dev set. Seed tasks, documents and accepted QA pairs go
through generation.seeds and generation.documents."""

from __future__ import annotations

from annotation.models import Candidate
from synthlab.errors import ValidationFailed

from .method_stats import DEV_KEY
from .methods import constitution as ca

SEPARATOR = "|"


def constitution_lines(project) -> str:
    """The constitution in force (the project's, else the default) as editable text: one principle
    per line, "name | critique request | revision request"."""
    return "\n".join(
        f"{p['name']} {SEPARATOR} {p['critique']} {SEPARATOR} {p['revision']}"
        for p in ca.constitution_for(project.options)
    )


def constitution_parse(text: str) -> list[dict]:
    """Principles from text, one per line: "name | critique request | revision request" (or without
    the name). ValidationFailed naming the line to fix."""
    principles = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(SEPARATOR)]
        if len(parts) == 2:
            parts = [f"principle-{len(principles) + 1}", *parts]
        if len(parts) != 3 or not all(parts):
            message = (
                f"Line {number}: write one principle as “name | critique request | revision request” "
                "(or “critique request | revision request”)."
            )
            raise ValidationFailed(message, details=[{"field": "constitution", "message": message}])
        principles.append({"name": parts[0], "critique": parts[1], "revision": parts[2]})
    return principles


def constitution_save(*, project, text: str) -> list[dict]:
    """Stores the project's constitution (Project.options["constitution"]); empty text goes back to
    the default one. All or nothing."""
    principles = constitution_parse(text)
    options = dict(project.options or {})
    if principles:
        try:
            options["constitution"] = ca.constitution_validate(principles)
        except ValueError as exc:
            raise ValidationFailed(
                str(exc), details=[{"field": "constitution", "message": str(exc)}]
            ) from None
    else:
        options.pop("constitution", None)
    project.options = options
    project.save(update_fields=["options", "updated_at"])
    return ca.constitution_for(project.options)


def curation_pairs(project):
    """The project's backtranslation pairs (generated instruction, paragraph) with the curator's
    score, newest first."""
    return (
        Candidate.objects.filter(item__project=project, recipe="backtranslation")
        .select_related("item")
        .order_by("-id")
    )


def curation_dev_labels(project) -> dict[str, bool]:
    return dict((project.options or {}).get(DEV_KEY) or {})
