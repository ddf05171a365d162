"""Cap a multi-line answer at ``completion.maxLines`` lines."""

from __future__ import annotations

from .pipeline import Cut, LineStage


class MaxLines(LineStage):
    def __init__(self, max_lines: int) -> None:
        super().__init__()
        self.max_lines = max_lines

    def on_line(self, text: str, begin: int, end: int, index: int) -> Cut | None:
        return Cut(end, "max-lines") if index + 1 >= self.max_lines else None
