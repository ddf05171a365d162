"""Stop lines that repeat with a changing number (``x1 = 1``, ``x2 = 2``, ``x3 = 3``, ...).

Where it stops being legitimate (measured on the standard library, docs/performance.md): real
code has runs of such lines (tables, enum values, test cases), but rarely more than
``MAX_RUN`` code lines (``DATA_RUN`` table rows) in a row with the same skeleton; generated runs
go on for hundreds. The cut keeps
``KEEP`` lines of the run, so a user who wanted the table still gets a start of it. A skeleton the
file itself runs (``LoopContext``) may run twice as long as it does there.
"""

from __future__ import annotations

from .lines import is_data, numbers, skeleton
from .loop_context import LoopContext
from .pipeline import Cut, LineStage

MAX_RUN = 8
DATA_RUN = 16  # rows of a literal table ("cp1250",  (f, [1, 2], 3),) run longer
KEEP = 3


class NumberedLines(LineStage):
    def __init__(self, context: LoopContext, max_run: int = MAX_RUN) -> None:
        super().__init__()
        self.context = context
        self.max_run = max_run
        self.limit: int | None = None  # worked out once a run is long enough to matter
        self.skel = ""
        self.run = 0
        self.run_ends: list[int] = []
        self.prev_numbers: list[str] = []

    def on_line(self, text: str, begin: int, end: int, index: int) -> Cut | None:
        line = text[begin:end]
        skel = skeleton(line)
        nums = numbers(line)
        if nums and skel == self.skel and nums != self.prev_numbers:
            self.run += 1
            self.run_ends.append(end)
        else:
            self.skel, self.run, self.run_ends, self.limit = skel, 1, [end], None
        self.prev_numbers = nums
        if self.run >= self.max_run and self.limit is None:  # every limit is at least max_run
            known = self.context.skeleton_runs.get(skel, 0)  # the file's own tables run longer
            base = DATA_RUN if skel.endswith(",") or is_data(skel) else self.max_run
            self.limit = base if known < 3 else max(base, 2 * known + 1)
        if self.limit is not None and self.run >= self.limit and len(skel) >= 4:
            return Cut(self.run_ends[KEEP - 1], "loop:numbered")
        return None
