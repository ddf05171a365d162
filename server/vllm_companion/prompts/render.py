"""Resolve a model id to its prompt family and render a fill-in-the-middle prompt.

Rendering splits the template on its placeholders (no ``str.format``: code is full of braces), so
the result is exactly the template with the context spliced in; golden files in tests/data/golden pin it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .families import FAMILIES, PLAIN, Family

_PLACEHOLDER = re.compile(r"(\{files\}|\{prefix\}|\{suffix\})")


class Matchable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def match(self) -> tuple[str, ...]: ...


M = TypeVar("M", bound=Matchable)


def pick(records: Sequence[M], model_id: str | None, override: str, default: M) -> M:
    """The record the user's override names, else the first whose pattern is in the model id:
    one resolver for FIM families and chat templates alike."""
    if override and override != "auto":
        named = next((r for r in records if r.name == override.lower()), None)
        if named is not None:
            return named
    lowered = (model_id or "").lower()
    return next((r for r in records if any(pattern in lowered for pattern in r.match)), default)


def resolve_family(model_id: str | None, override: str = "auto") -> Family:
    return pick(FAMILIES, model_id, override, PLAIN)


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
