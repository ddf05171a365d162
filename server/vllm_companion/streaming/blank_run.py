"""Stop whitespace-only output: runs of blank lines or of spaces/tabs within a line.

Code rarely has more than two or three blank lines in a row (PEP 8 and formatters say two; the
standard library has threes); a model that emits ``MAX_BLANK_LINES`` + 1, or a line of
``MAX_SPACES`` blanks, is looping on whitespace. The cut keeps what came before the run.
"""

from __future__ import annotations

from .pipeline import Cut

MAX_BLANK_LINES = 4
MAX_SPACES = 120


class BlankRun:
    def feed(self, text: str, start: int) -> Cut | None:
        tail = text[max(0, start - MAX_SPACES - MAX_BLANK_LINES * 8) :]
        stripped = tail.rstrip()
        run = tail[len(stripped) :]
        if run.count("\n") - 1 > MAX_BLANK_LINES or (len(run) >= MAX_SPACES and "\n" not in run):
            at = len(text) - len(run)
            keep_newline = text.find("\n", at)
            return Cut(keep_newline if keep_newline != -1 else at, "loop:blank")
        return None
