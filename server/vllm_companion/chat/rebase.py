"""An edit's range, taken when the request arrived, moved onto the text as it is when the model
has answered (issue 19, point 6: typing two lines above the selection while the model wrote made
the edit replace ``import os``/``import sys``).

While the model writes, an ``Anchor`` follows the document: each change is told to it as it is
applied (documents.py ``Moved``). A change that ends at or before the range's start moves it
(typing above it, or at its very start); one that starts at or after its end leaves it (typing
below it, or at its very end); anything else touched the text the model rewrote, and the edit is
refused, even if later changes restore that text (an undo, or the same lines cut and pasted
elsewhere, look alike: refusing costs a retry, a misplaced edit costs code). A client that sends
the whole text is followed by the lines it changed, taken wide where repeated lines make that
ambiguous. The text found at the moved range must still be the text the model was given.
Nothing is kept per change, so any number of changes costs nothing but the following.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

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


class Anchor:
    """A pending edit's range in one document, following its changes while the ``with`` lasts."""

    def __init__(self, doc: Document, start: Index, end: Index) -> None:
        self.doc = doc
        self.span: tuple[Index, Index] | None = (start, end)  # None once a change touched it

    def __enter__(self) -> Anchor:
        self.doc.followers.append(self.follow)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.doc.followers.remove(self.follow)

    def follow(self, change: Moved) -> None:
        if self.span is not None:
            self.span = moved(*self.span, [change])

    def where(self, text: str) -> tuple[Index, Index] | None:
        """Where ``text`` (found at the range when it was anchored) is now; None when the user
        changed it."""
        if self.span is None or self.doc.text_between(*self.span) != text:
            return None
        return self.span
