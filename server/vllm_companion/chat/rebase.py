"""An edit's range, taken when the request arrived, moved onto the text as it is when the model
has answered (issue 19, point 6: typing two lines above the selection while the model wrote made
the edit replace ``import os``/``import sys``).

The document logs where each change fell (documents.py ``Moved``). A change that ends at or before
the range's start moves it (typing above it, or at its very start); one that starts at or after
its end leaves it (typing below it, or at its very end); anything else touched the text the model
rewrote, and the edit is refused, as it is when the log no longer reaches back (a client that
sends the whole text is logged by the lines it changed). The text found at the moved range must
still be the text the model was given.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..documents import Document, Index, Moved


def moved(start: Index, end: Index, changes: Iterable[Moved]) -> tuple[Index, Index] | None:
    """``start``..``end`` through ``changes`` (oldest first); None when one of them touched it."""
    for change in changes:
        if change.end <= start:
            start, end = _after(start, change), _after(end, change)
        elif change.start < end:
            return None
    return start, end


def _after(pos: Index, change: Moved) -> Index:
    """``pos`` (at or after the change's end) in the text after the change."""
    row, col = pos
    if row == change.end[0]:
        return change.new_end[0], change.new_end[1] + col - change.end[1]
    return row + change.new_end[0] - change.end[0], col


def rebase(doc: Document, since: int, start: Index, end: Index, text: str) -> tuple[Index, Index] | None:
    """Where ``text``, found at ``start``..``end`` after ``since`` changes, is in ``doc`` now;
    None when the user changed it (or the log cannot tell)."""
    changes = doc.since(since)
    span = moved(start, end, changes) if changes is not None else None
    if span is None or doc.text_between(*span) != text:
        return None
    return span
