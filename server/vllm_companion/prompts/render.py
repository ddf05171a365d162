"""Resolve a model id to its prompt family and render a fill-in-the-middle prompt.

Rendering splits the template on its placeholders (no ``str.format``: code is full of braces), so
the result is exactly the template with the context spliced in; golden files in tests/data/golden pin it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from ..model_ids import lookup
from .families import FAMILIES, PLAIN, Family

_PLACEHOLDER = re.compile(r"(\{files\}|\{prefix\}|\{suffix\})")


class Matchable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def match(self) -> tuple[str, ...]: ...


M = TypeVar("M", bound=Matchable)


def pick(records: Sequence[M], model_id: str | None, override: str, default: M) -> M:
    """The record the user's override names, else the one the model id names by the package's one
    rule (model_ids.py, as architectures are found): one resolver for FIM families and chat templates."""
    if override and override != "auto":
        named = next((r for r in records if r.name == override.lower()), None)
        if named is not None:
            return named
    found = lookup(records, model_id)
    return default if found is None else found


def resolve_family(model_id: str | None, override: str = "auto") -> Family:
    return pick(FAMILIES, model_id, override, PLAIN)


# Line-comment leaders by LSP languageId, for context snippets in families without file tokens.
COMMENTS = {
    **dict.fromkeys(("python", "shellscript", "ruby", "perl", "r", "yaml", "toml", "dockerfile", "makefile",
                     "elixir", "julia", "nim", "powershell", "coffeescript"), "#"),
    **dict.fromkeys(("c", "cpp", "csharp", "java", "javascript", "javascriptreact", "typescript", "typescriptreact",
                     "go", "rust", "swift", "kotlin", "scala", "dart", "php", "objective-c", "zig", "groovy"), "//"),
    **dict.fromkeys(("lua", "sql", "haskell"), "--"),
}


@dataclass(frozen=True)
class FimContext:
    prefix: str
    suffix: str
    path: str = ""
    other_files: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (path, content) snippets
    comment: str = ""  # the language's line-comment leader ("" = no commented context)


def render_fim(family: Family, ctx: FimContext) -> str:
    """The prompt. Context snippets go in the family's multi-file form where it has one (its
    repo and file tokens, as the model was trained), otherwise as commented snippets at the head
    of the prefix (Copilot's "Compare this snippet from ..." form), otherwise nowhere."""
    files, prefix = "", ctx.prefix
    if family.repo_header and ctx.other_files:
        parts = [family.repo_header]
        for path, content in ctx.other_files:
            parts.append(family.file_template.replace("{path}", path).replace("{content}", content.rstrip("\n")))
        parts.append(family.current_file.replace("{path}", ctx.path))
        files = "".join(parts)
    elif ctx.comment and ctx.other_files:
        prefix = "".join(_commented(path, content, ctx.comment) for path, content in ctx.other_files) + prefix
    values = {"{files}": files, "{prefix}": prefix, "{suffix}": ctx.suffix}
    return "".join(values.get(piece, piece) for piece in _PLACEHOLDER.split(family.template))


def _commented(path: str, content: str, leader: str) -> str:
    lines = content.rstrip("\n").split("\n")
    body = "".join(f"{leader} {line}".rstrip() + "\n" for line in lines)
    return f"{leader} Compare this snippet from {path}:\n{body}"
