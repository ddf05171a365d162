"""What repetition the file itself already shows, so the loop guard tolerates the file's style.

A codec table of identical rows, a run of ``case`` arms or numbered constants right above the
cursor is how this file is written; a model that continues it is not looping. Built once per
request from the last ``LINES`` lines before the cursor.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property

from .lines import normalize, skeleton

LINES = 64
TAIL_CHARS = 4000


def _runs(items: list[str]) -> dict[str, int]:
    """Longest run of consecutive equal items, per item."""
    best: dict[str, int] = {}
    run, prev = 0, None
    for item in items:
        run = run + 1 if item == prev else 1
        prev = item
        if item and run > best.get(item, 0):
            best[item] = run
    return best


class LoopContext:
    """Computed lazily: most streams never repeat anything, and then this costs nothing."""

    def __init__(self, prefix: str) -> None:
        self.tail = prefix[-TAIL_CHARS:]

    @classmethod
    def from_prefix(cls, prefix: str) -> LoopContext:
        return cls(prefix)

    @cached_property
    def _lines(self) -> list[str]:
        return self.tail.split("\n")[-LINES - 1 : -1] if self.tail else []  # complete lines only

    @cached_property
    def line_runs(self) -> dict[str, int]:
        return _runs([normalize(x) for x in self._lines])

    @cached_property
    def line_counts(self) -> Counter[str]:
        return Counter(normalize(x) for x in self._lines)

    @cached_property
    def skeleton_runs(self) -> dict[str, int]:
        return _runs([skeleton(x) for x in self._lines])

    def line_limit(self, line: str, default: int) -> int:
        """Occurrences in a row allowed for ``line``: more if the file itself repeats it."""
        run = self.line_runs.get(line, 0)
        return default if run < 2 else max(default, min(2 * run, 32) + 1)
