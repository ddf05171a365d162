"""Stop when the answer starts re-typing the code that follows the cursor.

Prefix-only models do not see the suffix at all, and FIM models sometimes run past the hole: both
then re-type the next line of the file. A completed output line equal (indentation included,
trailing blanks ignored) to the next non-blank line after the cursor cuts the output before it.
"""

from __future__ import annotations

from .pipeline import Cut, LineStage


def next_nonblank_line(suffix_after_line: str) -> str:
    for line in suffix_after_line.split("\n", 64)[:64]:
        if line.strip():
            return line.rstrip()
    return ""


class SuffixRetype(LineStage):
    def __init__(self, suffix_after_line: str, line_prefix: str) -> None:
        super().__init__()
        self.target = next_nonblank_line(suffix_after_line)
        self.line_prefix = line_prefix

    def on_line(self, text: str, begin: int, end: int, index: int) -> Cut | None:
        if not self.target:
            return None
        line = text[begin:end].rstrip()
        if index == 0:
            line = (self.line_prefix + line).rstrip()
            # Re-typing the next line at the cursor: nothing of this output is worth keeping.
            return Cut(0, "suffix-retype") if line == self.target and line.strip() else None
        if line == self.target:
            return Cut(max(0, begin - 1), "suffix-retype")
        return None
