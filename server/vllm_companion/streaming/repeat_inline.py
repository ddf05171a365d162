"""Stop a unit that repeats inside one line: ``foo(foo(foo(``, ``▅▅▅▅``, ``, 0, 0, 0``.

Only the tail of the current line is examined, and only every ``STRIDE`` characters of growth,
with candidate periods found by ``rfind`` of the last character and C-speed slice compares (a
few microseconds per chunk). A unit must repeat ``repeats(p)`` times to count; rulers of ASCII
punctuation (``# =====``) are legitimate up to ``RULER`` characters of line, runs of digits up to
``DIGIT_RUN`` (binary and hex literals), and units the file already repeats as often
(``LoopContext``) are allowed. The cut drops the whole looping line
(never half a line of the loop).
"""

from __future__ import annotations

from .loop_context import LoopContext
from .pipeline import Cut

MAX_PERIOD = 48
STRIDE = 4
RULER = 100
DIGIT_RUN = 66  # a 64-bit binary literal
_RULER_CHARS = frozenset("=-*#~_/+.<>|:^ \t")
_DIGITS = frozenset("0123456789abcdefABCDEF")
_RULER_HEADS = ("#", "//", "--", "/*", "*", '"', "'", "(", "=", "%", ";")
_LINE_HEADS = ("#", "//", "--", "/*", "*", '"', "'", "f'", 'f"', "r'", 'r"', "b'", 'b"', "|", "+", "<!--", ";", "%")


def repeats(period: int) -> int:
    """Copies needed before a unit of this length is a loop (short units repeat legitimately)."""
    return 24 if period == 1 else 10 if period <= 3 else 8 if period <= 6 else 6


def allowed(unit: str, line: str) -> bool:
    """Legitimate long runs: rulers of punctuation in a normal-width line, digits of a literal."""
    chars = set(unit)
    run = len(line) - len(line.rstrip("".join(chars)))  # the whole run, not just the checked span
    if chars <= _RULER_CHARS and len(line) < RULER:
        head = line[: len(line) - run].strip()  # a ruler is the line itself, in a comment or string
        return len(head) <= 2 or head.endswith(_RULER_HEADS) or head.startswith(_LINE_HEADS)
    return chars <= _DIGITS and run < DIGIT_RUN


class InlineRepeat:
    def __init__(self, context: LoopContext) -> None:
        self.context = context
        self.checked = 0  # line length at the last check
        self.line_start = -1

    def feed(self, text: str, start: int) -> Cut | None:
        line_start = text.rfind("\n") + 1
        if line_start != self.line_start:
            self.line_start, self.checked = line_start, 0
        length = len(text) - line_start
        if length - self.checked < STRIDE:
            return None
        self.checked = length
        line = text[line_start:]
        last = line[-1]
        pos = len(line) - 1
        lo = max(0, len(line) - 1 - MAX_PERIOD)
        while (pos := line.rfind(last, lo, pos)) >= 0:
            period = len(line) - 1 - pos
            count = repeats(period)
            span = period * count
            if span > len(line) or line[-span:] != line[-period:] * count:
                continue
            unit = line[-span:]
            if not unit.strip() or allowed(unit, line):  # blank runs are BlankRun's business
                continue
            if unit in self.context.tail:
                continue  # the file already has this run: its style, not a loop
            return Cut(max(0, line_start - 1), "loop:inline")
        return None
