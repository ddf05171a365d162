"""A model id to its record: ONE rule for every table keyed by model id (prompt families and chat
templates, prompts/render.py's ``pick``; architectures, engine/planning/architectures.py).

The id is read case-insensitively with ``_`` as ``-`` (``Qwen2_5-Coder`` is ``qwen2.5-coder``'s
repository spelling, ``code_llama`` is ``code-llama``), and the longest pattern found in it wins,
ties to the record listed first: ``smollm2-1.7b`` is not taken for a shorter ``smollm2`` pattern,
and a table's order only matters between patterns of equal length (issue 21, point 6: the two
rules that were here before disagreed on exactly that). A leaf: it imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class Matchable(Protocol):
    @property
    def match(self) -> tuple[str, ...]: ...


M = TypeVar("M", bound=Matchable)


def normalize(text: str) -> str:
    """How ids and patterns are compared: lower case, ``_`` read as ``-``."""
    return text.lower().replace("_", "-")


def lookup(records: Sequence[M], model_id: str | None) -> M | None:
    """The record with the longest pattern found in ``model_id`` (the first such), else None."""
    wanted = normalize(model_id or "")
    best, length = None, 0
    for record in records:
        for pattern in map(normalize, record.match):
            if len(pattern) > length and pattern in wanted:
                best, length = record, len(pattern)
    return best
