"""Filling the recipes' prompt templates (generation.prompts files, same format and overrides).

The templates' own `render` knows the weak-label placeholders only; the methods need more
({examples}, {instruction_list}, {claim}, ...). This fills every `{name}` whose name is passed,
and leaves any other brace alone, as `PromptTemplate.render` does.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def fill(template: str, values: dict) -> str:
    return _NAME.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def messages(template, **values) -> list[dict]:
    """Chat messages from a PromptTemplate (system left out when empty)."""
    out = []
    system = fill(template.system, values).strip()
    if system:
        out.append({"role": "system", "content": system})
    out.append({"role": "user", "content": fill(template.user, values).strip()})
    return out


def text(template, **values) -> str:
    """The template as one plain text (system, blank line, user): for data rows such as the
    sycophancy prompts, which are training examples rather than chat requests."""
    return "\n\n".join(m["content"] for m in messages(template, **values))
