"""Prompt templates: one `<name>.txt` file per template in this folder, readable by admins.

File format::

    version: 1
    description: what the template is for
    --- system
    text of the system message
    --- user
    text of the user message, with {placeholders}

Placeholders are `{name}` for the names in VARIABLES; any other brace (a JSON example in the
prompt, say) is left as it is, so a template never fails on a stray `{`. A project overrides a
template in `Project.options["prompts"][name]`, either as the full file text above or as
`{"system": ..., "user": ..., "version": ...}`; provenance records which one ran (name, version,
source, sha256 of the text).
"""

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from synthlab.errors import ValidationFailed

PROMPT_DIR = Path(__file__).resolve().parent
VARIABLES = (
    "text",
    "prompt",
    "question",
    "context",
    "labels",
    "labels_json",
    "guidelines",
    "task_type",
    "project",
)
_PLACEHOLDER = re.compile(r"\{(" + "|".join(VARIABLES) + r")\}")
_SECTION = re.compile(r"^--- (system|user)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    system: str
    user: str
    description: str = ""
    source: str = "builtin"
    text: str = field(default="", repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, **values: str) -> list[dict]:
        """Chat messages with the placeholders filled in; an empty system part is left out."""

        def fill(template: str) -> str:
            return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), template)

        messages = []
        system = fill(self.system).strip()
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": fill(self.user).strip()})
        return messages

    def provenance(self) -> dict:
        return {"name": self.name, "version": self.version, "source": self.source, "sha256": self.sha256}


def prompt_parse(*, name: str, text: str, source: str) -> PromptTemplate:
    """Parses the file format above; raises ValidationFailed with what to fix."""
    parts = _SECTION.split(text)
    header, sections = parts[0], dict(zip(parts[1::2], parts[2::2], strict=True))
    meta = {}
    for line in header.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip()
    if "user" not in sections:
        raise ValidationFailed(
            f'Prompt "{name}" has no "--- user" section; start the user message with a line "--- user".',
            details=[{"field": "prompts", "message": f'"{name}": missing "--- user" section.'}],
        )
    return PromptTemplate(
        name=name,
        version=meta.get("version", "1"),
        description=meta.get("description", ""),
        system=sections.get("system", "").strip("\n"),
        user=sections["user"].strip("\n"),
        source=source,
        text=text,
    )


@cache
def builtin_prompt(name: str) -> PromptTemplate:
    path = PROMPT_DIR / f"{name}.txt"
    if not re.fullmatch(r"[a-z0-9_]+", name) or not path.is_file():
        raise ValidationFailed(f'There is no prompt template "{name}".')
    return prompt_parse(name=name, text=path.read_text(encoding="utf-8"), source="builtin")


def builtin_prompt_names() -> list[str]:
    return sorted(p.stem for p in PROMPT_DIR.glob("*.txt"))


def prompt_get(*, name: str, project=None) -> PromptTemplate:
    """The project's override of template `name` if it has one, else the built-in file."""
    override = ((getattr(project, "options", None) or {}).get("prompts") or {}).get(name)
    if not override:
        return builtin_prompt(name)
    if isinstance(override, dict):
        base = builtin_prompt(name)
        text = (
            f"version: {override.get('version', 'project')}\n"
            f"--- system\n{override.get('system', base.system)}\n--- user\n{override.get('user', base.user)}\n"
        )
    else:
        text = str(override)
    return prompt_parse(name=name, text=text, source="project")
