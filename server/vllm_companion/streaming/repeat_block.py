"""Stop a block of several lines that repeats (2 to ``MAX_PERIOD`` lines per copy).

Checked each time a line completes: for each period p, how many of the latest lines equal the
lines p before them? A whole copy repeated (of a block of ``BIG_BLOCK`` characters or more), a
third copy begun, or, for blocks of ``EARLY_PERIOD`` lines or more, a copy repeated but for its
last line (``EARLY_CHARS`` characters at least) cuts the output after the first copy. Shorter
partial repeats are real code's habit (similar method bodies), measured on the standard library.
Blocks whose lines the file already repeats (``LoopContext``) need a third copy. Most tools only
catch single-line loops.
"""

from __future__ import annotations

from .lines import normalize
from .loop_context import LoopContext
from .pipeline import Cut, LineStage

MAX_PERIOD = 8
BIG_BLOCK = 80
EARLY_PERIOD = 4
EARLY_CHARS = 60
MIN_LINE_CHARS = 3


class RepeatedBlock(LineStage):
    def __init__(self, context: LoopContext) -> None:
        super().__init__()
        self.context = context
        self.lines: list[str] = []
        self.ends: list[int] = []  # text offset after each line

    def on_line(self, text: str, begin: int, end: int, index: int) -> Cut | None:
        self.lines.append(normalize(text[begin:end]))
        self.ends.append(end)
        n = len(self.lines)
        lines = self.lines
        for p in range(2, min(MAX_PERIOD, n - 2) + 1):
            m = 0  # lines matching the ones p earlier, counted back from the newest
            while m < n - p and lines[n - 1 - m] == lines[n - 1 - m - p]:
                m += 1
            if m < 2:
                continue
            block = lines[n - m - p : n - m] if m < p else lines[n - p :]
            if sum(len(x) >= MIN_LINE_CHARS for x in block) < 2 or len(set(block)) < 2:
                continue  # blank or single-line repeats are the other detectors' business
            repeated = lines[n - m :]
            size = sum(map(len, repeated))
            familiar = all(self.context.line_counts[x] >= 2 for x in block)
            if familiar:
                hit = m >= 2 * p
            else:
                big = sum(map(len, block)) >= BIG_BLOCK
                hit = m > p or (m >= p and big) or (p >= EARLY_PERIOD and m >= p - 1 and size >= EARLY_CHARS)
            if hit:
                return Cut(self.ends[n - m - 1], "loop:block")
        return None
