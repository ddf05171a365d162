"""The text arithmetic of the edit history (history.py): which rows one didChange touches, and an
edit as a before/after pair of lines cut to its bounds.

Split from history.py along its seam: history.py owns the state (the open windows, the edits
kept, the accept marks); this module owns none and reads no document, so every bound here
(``MAX_CHANGES`` changes taken one span at a time, ``MAX_LINES`` lines a side, ``MAX_LINE_CHARS``
characters a line, cut around the change) holds whatever the history asks of it.
"""

from __future__ import annotations

from ..documents import Change

CONTEXT = 2  # unchanged lines kept either side of a recorded edit
MAX_LINES = 24  # lines of one recorded side (before or after), context included
MAX_LINE_CHARS = 400  # characters of one recorded line (a minified line is cut around the change)
MAX_CHANGES = 64  # changes in one didChange taken one span at a time; more count as a whole-text change


def trimmed(base: list[str], now: list[str]) -> tuple[int, str, str] | None:
    """A window's lines then (``base``) and now as ``(first changed row in the window, before,
    after)``: common lines trimmed but ``CONTEXT`` either side, each side cut to its bounds; None
    when nothing changed."""
    old, new = [_strip(x) for x in base], [_strip(x) for x in now]
    head = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    if head == len(old) == len(new):
        return None
    a, b = max(0, head - CONTEXT), tail - min(CONTEXT, tail)
    before, after = _side(old[a : len(old) - b]), _side(new[a : len(new) - b])
    if len(old) - tail - head == len(new) - tail - head == 1:  # one line: cut it around the change
        before, after = _around(old, new, head, a, b)
    return head, before, after


def span(changes: list[Change], rows: int) -> tuple[int, int, int] | None:
    """The rows a notification's changes touch, in the document's rows before the first of them,
    and the lines they add (negative: remove): ``(r0, r1, added)``; None for the whole text (a
    whole-text change among them, or more than ``MAX_CHANGES``). Each change is
    in the rows the previous ones left, so the span is widened by the lines those added or removed.
    Rows past the end are the end (as the document store applies them)."""
    if len(changes) > MAX_CHANGES or any(c.range is None for c in changes):
        return None
    lo, hi, added, shift = rows, 0, 0, 0
    for c in changes:
        assert c.range is not None
        r0, r1 = sorted((min(max(0, c.range.start.line), rows), min(max(0, c.range.end.line), rows)))
        lo, hi = min(lo, r0 - shift), max(hi, r1 + shift)
        delta = c.text.count("\n") + c.text.count("\r") - c.text.count("\r\n") - (r1 - r0)
        added, shift = added + delta, shift + abs(delta)
    return max(0, lo), min(rows, hi), added


def _strip(line: str) -> str:
    return line.rstrip("\r\n")


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…"


def _side(lines: list[str]) -> str:
    return "\n".join(_cut(x) for x in lines[:MAX_LINES])


def _around(old: list[str], new: list[str], row: int, a: int, b: int) -> tuple[str, str]:
    """One changed line, with its context lines: a long line is cut to the same window around
    the change on both sides (a 10 MB minified line records a few hundred characters)."""
    x, y = old[row], new[row]
    if max(len(x), len(y)) <= MAX_LINE_CHARS:
        return _side(old[a : len(old) - b]), _side(new[a : len(new) - b])
    start = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
    lo = max(0, start - MAX_LINE_CHARS // 2)
    cx, cy = x[lo : lo + MAX_LINE_CHARS], y[lo : lo + MAX_LINE_CHARS]
    before = [*old[a:row], cx, *old[row + 1 : len(old) - b]]
    after = [*new[a:row], cy, *new[row + 1 : len(new) - b]]
    return _side(before), _side(after)
