"""Completion cache (LRU with TTL) and typed-ahead reuse.

Typed-ahead: when the user types characters that match the start of the suggestion being shown,
the remainder is the answer and no backend request is made (Copilot and Continue behave the same).
The same test decides whether an in-flight generation can serve a newer request.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import TTLCache

SUFFIX_HEAD = 256  # characters of suffix that must match for a reuse


@dataclass(frozen=True)
class Shown:
    prefix: str
    suffix: str
    text: str


def typed_since(old_prefix: str, old_suffix: str, new_prefix: str, new_suffix: str) -> str | None:
    """What was typed between two cursor positions, if the new one just extends the old one."""
    if len(new_prefix) < len(old_prefix) or not new_prefix.startswith(old_prefix):
        return None
    if new_suffix[:SUFFIX_HEAD] != old_suffix[:SUFFIX_HEAD]:
        return None
    return new_prefix[len(old_prefix) :]


def remainder(text: str, typed: str) -> str | None:
    """The part of ``text`` still to insert after ``typed``; None if the user typed something else."""
    if text.startswith(typed) and len(text) > len(typed):
        return text[len(typed) :]
    return None


class CompletionCache:
    def __init__(self, size: int, ttl_s: float) -> None:
        self._lru: TTLCache[tuple[str, str, str], str] | None = TTLCache(size, ttl_s) if size and ttl_s else None
        self._shown: dict[str, Shown] = {}

    def get(self, key: tuple[str, str, str]) -> str | None:
        return self._lru.get(key) if self._lru is not None else None

    def put(self, key: tuple[str, str, str], uri: str, prefix: str, suffix: str, text: str) -> None:
        if self._lru is not None:
            self._lru[key] = text
        if text:
            self._shown[uri] = Shown(prefix, suffix, text)

    def typed_ahead(self, uri: str, prefix: str, suffix: str) -> str | None:
        shown = self._shown.get(uri)
        if shown is None:
            return None
        typed = typed_since(shown.prefix, shown.suffix, prefix, suffix)
        if not typed:  # same position: the LRU cache answers that
            return None
        return remainder(shown.text, typed)

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)
