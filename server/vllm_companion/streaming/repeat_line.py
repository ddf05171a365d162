"""Stop a line that repeats: the classic TGI-era failure (the same line, hundreds of times).

A line counts when it is not trivially short (``MIN_CHARS`` after normalisation: ``}``, ``pass``,
``else:`` repeat legitimately). At its ``occurrences``-th copy in a row (default 3: the 2nd repeat)
the output is cut after the first copy and the engine stopped; the 3rd copy is recognised from
its first ``EARLY_CHARS`` characters, so a long line does not have to stream three times. Rows of
literals (test data, tables) may repeat ``DATA_OCCURRENCES`` times, and lines the file itself
repeats (``LoopContext``) longer still: both measured on the standard library.
"""

from __future__ import annotations

from .lines import is_data, normalize
from .loop_context import LoopContext
from .pipeline import Cut, LineStage

MIN_CHARS = 5
EARLY_CHARS = 12
DATA_OCCURRENCES = 6  # rows of literals repeat in real tables and test data


class RepeatedLine(LineStage):
    def __init__(self, context: LoopContext, occurrences: int = 3) -> None:
        super().__init__()
        self.context = context
        self.occurrences = occurrences
        self.limit: int | None = None  # for the current run; worked out once it repeats
        self.last = ""
        self.count = 0
        self.first_end = 0  # where the first copy of the current run ends

    def _limit(self) -> int:
        if self.limit is None:
            base = max(self.occurrences, DATA_OCCURRENCES) if is_data(self.last) else self.occurrences
            self.limit = self.context.line_limit(self.last, base)
        return self.limit

    def feed(self, text: str, start: int) -> Cut | None:
        cut = super().feed(text, start)
        if cut is None and self.count >= 2 and self.count == self._limit() - 1 and len(self.last) >= MIN_CHARS:
            partial = normalize(text[self._line_start :])
            if len(partial) >= min(EARLY_CHARS, len(self.last)) and self.last.startswith(partial):
                return Cut(self.first_end, "loop:line")
        return cut

    def on_line(self, text: str, begin: int, end: int, index: int) -> Cut | None:
        line = normalize(text[begin:end])
        if line and line == self.last:
            self.count += 1
            if self.count >= self._limit() and len(line) >= MIN_CHARS:
                return Cut(self.first_end, "loop:line")
        else:
            self.last, self.count, self.first_end, self.limit = line, 1, end, None
        return None
