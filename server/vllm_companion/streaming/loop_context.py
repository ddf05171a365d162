"""What repetition the file itself already shows, so the loop guard tolerates the file's style.

A codec table of identical rows, a run of ``case`` arms or numbered constants right above the
cursor is how this file is written; a model that continues it is not looping. Built once per
request from the last ``LINES`` lines before the cursor.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class LoopContext:
    line_runs: dict[str, int] = field(default_factory=dict)
    line_counts: Counter[str] = field(default_factory=Counter)
    skeleton_runs: dict[str, int] = field(default_factory=dict)
    tail: str = ""

    @classmethod
    def from_prefix(cls, prefix: str) -> LoopContext:
        if not prefix:
            return cls()
        tail = prefix[-TAIL_CHARS:]
        lines = tail.split("\n")[-LINES - 1 : -1]  # complete lines only
        normal = [normalize(x) for x in lines]
        return cls(_runs(normal), Counter(normal), _runs([skeleton(x) for x in lines]), tail)

    def line_limit(self, line: str, default: int) -> int:
        """Occurrences in a row allowed for ``line``: more if the file itself repeats it."""
        run = self.line_runs.get(line, 0)
        return default if run < 2 else max(default, min(2 * run, 32) + 1)
