"""Resolve a model id to its prompt family and render a fill-in-the-middle prompt.

Rendering splits the template on its placeholders (no ``str.format``: code is full of braces), so
the result is exactly the template with the context spliced in; golden files in tests/data/golden pin it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .families import BY_NAME, FAMILIES, PLAIN, Family

_PLACEHOLDER = re.compile(r"(\{files\}|\{prefix\}|\{suffix\})")


def resolve_family(model_id: str | None, override: str = "auto") -> Family:
    """The user's override when it names a family, else the first family whose pattern is in the id."""
    if override and override != "auto":
        family = BY_NAME.get(override.lower())
        if family is not None:
            return family
    lowered = (model_id or "").lower()
    for family in FAMILIES:
        if any(pattern in lowered for pattern in family.match):
            return family
    return PLAIN


@dataclass(frozen=True)
class FimContext:
    prefix: str
    suffix: str
    path: str = ""
    other_files: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (path, content)


def render_fim(family: Family, ctx: FimContext) -> str:
    files = ""
    if family.repo_header and ctx.other_files:
        parts = [family.repo_header]
        for path, content in ctx.other_files:
            parts.append(family.file_template.replace("{path}", path).replace("{content}", content.rstrip("\n")))
        parts.append(family.current_file.replace("{path}", ctx.path))
        files = "".join(parts)
    values = {"{files}": files, "{prefix}": ctx.prefix, "{suffix}": ctx.suffix}
    return "".join(values.get(piece, piece) for piece in _PLACEHOLDER.split(family.template))
