"""What every context source works on and returns: plain snapshots, so sources run off the event
loop (in a thread, under a deadline) without touching live documents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..tokens import estimate_tokens


@dataclass(frozen=True)
class Snippet:
    path: str  # as shown to the model: a workspace-relative path or a file name
    text: str
    source: str  # "imports", "open-files" or "recent-edits"


@dataclass(frozen=True)
class OpenDoc:
    uri: str
    path: str
    lines: Sequence[str]


@dataclass(frozen=True)
class Query:
    """The current document around the cursor."""

    uri: str
    path: str
    language: str
    row: int
    lines: Sequence[str]


def cost(snippet: Snippet) -> int:
    """Tokens a snippet takes in the prompt, rendered either way (prompts/render.py): its text, a
    line-comment leader per line, and a header naming its path."""
    return estimate_tokens(snippet.text) + snippet.text.count("\n") + 1 + estimate_tokens(snippet.path) + 12


def context_tokens(snippets: Sequence[Snippet]) -> int:
    """Tokens the context takes in the prompt: the window gets the rest (``Budget.less``)."""
    return sum(map(cost, snippets))


def fit(snippets: Sequence[Snippet], budget_tokens: int) -> list[Snippet]:
    """The snippets, in order, while they fit in ``budget_tokens`` (one that does not is skipped)."""
    out: list[Snippet] = []
    for snippet in snippets:
        tokens = cost(snippet)
        if tokens <= budget_tokens and snippet.text.strip():
            out.append(snippet)
            budget_tokens -= tokens
    return out
