"""Open documents as lists of lines, with LSP position-encoding conversion.

pygls's own TextDocument re-splits the whole text on every access, which costs tens of
milliseconds per keystroke on a multi-megabyte file; here an incremental change touches only the
lines it edits, and a completion reads only the window it needs.
While an edit is pending on a document, each change is told to its ``followers`` as where it
fell (``Moved``), so the edit can be moved onto the current text or refused (chat/rebase.py); with
none pending nothing is recorded.
Lines end at ``\n``, ``\r\n`` or ``\r`` only, as LSP counts them (``str.splitlines`` also breaks
at form feeds, ``\x85``, U+2028...: a form feed above a selection moved an edit one line down).
Positions and their encodings: positions.py.
Line endings: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#textDocuments
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .positions import (
    UTF8,
    UTF16,
    UTF32,
    Index,
    Position,
    PositionLike,
    RangeLike,
    column_to_index,
    index_to_column,
)

__all__ = [
    "EDITS", "UTF8", "UTF16", "UTF32", "Change", "Document", "DocumentStore", "Index", "Moved", "Position",
    "PositionLike", "RangeLike", "column_to_index", "index_to_column",
]
EDITS = 64  # edit positions remembered, all documents together


@dataclass(frozen=True)
class Change:
    """An edit: ``text`` replaces ``range`` (None: the whole document)."""

    text: str
    range: RangeLike | None = None


@dataclass(frozen=True, slots=True)
class Moved:
    """Where one applied change fell, in indices: the text ``start``..``end`` became
    ``start``..``new_end``. Text outside it is unchanged, and after it is shifted."""

    start: Index
    end: Index
    new_end: Index


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


@dataclass
class Document:
    uri: str
    language_id: str
    version: int
    lines: list[str] = field(default_factory=list)  # each keeps its line ending
    followers: list[Callable[[Moved], None]] = field(default_factory=list)  # pending edits (chat/rebase.py)
    # Which didOpen made it (DocumentStore's count): reopened, a document starts at version 1
    # again, so an action offered on the old text names its opening too (actions.py).
    opened: int = 0
    _snapshot: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_text(cls, uri: str, language_id: str, version: int, text: str) -> Document:
        return cls(uri, language_id, version, _split(text))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def snapshot(self) -> tuple[str, ...]:
        """The lines as they are now, immutable, for readers on other threads (the context
        sources): made once per change, so a completion in another document does not copy this
        one again (every open document was copied per completion: O(open text), issue 21).
        Only ``apply_change`` changes ``lines``, and it drops the snapshot."""
        if self._snapshot is None:
            self._snapshot = tuple(self.lines)
        return self._snapshot

    def line(self, row: int) -> str:
        """Line ``row`` without its line ending ('' past the end)."""
        return _strip_eol(self.lines[row]) if 0 <= row < len(self.lines) else ""

    def to_index(self, pos: PositionLike, encoding: str) -> tuple[int, int]:
        """Client position -> (row, code-point column), clamped into the document."""
        if not self.lines:
            return 0, 0
        if pos.line == len(self.lines) and self.lines[-1] != _strip_eol(self.lines[-1]):
            return len(self.lines), 0  # the empty line after a final line break (the list has none)
        row = max(0, min(pos.line, len(self.lines) - 1))
        if pos.line >= len(self.lines):
            return row, len(self.line(row))
        return row, column_to_index(self.line(row), pos.character, encoding)

    def span(self, start: PositionLike, end: PositionLike, encoding: str) -> tuple[Index, Index]:
        """Two client positions as (row, code-point column) indices, in order (a range given end
        first is the same range); a position past the last line is the end of the text, so a
        range wholly past it is empty there (it took the final line break before). The end of the
        text is where a change there starts (``_bound``), so typing there is seen as at the range."""
        a, b = sorted((self._bound(start, encoding), self._bound(end, encoding)))
        return a, b

    def text_in(self, start: PositionLike, end: PositionLike, encoding: str) -> str:
        """The text between two client positions."""
        return self.text_between(*self.span(start, end, encoding))

    def text_between(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        """The text between two (row, code-point column) indices, in either order, clamped."""
        if not self.lines:
            return ""
        last = len(self.lines) - 1
        ends = [(last, len(self.lines[last])) if r > last else (0, 0) if r < 0 else (r, c) for r, c in (start, end)]
        (r0, c0), (r1, c1) = sorted(ends)  # past the last line: the end of the text (it was only the end)
        if r0 == r1:
            return self.lines[r0][c0:c1]
        return self.lines[r0][c0:] + "".join(self.lines[r0 + 1 : r1]) + self.lines[r1][:c1]

    def to_position(self, row: int, col: int, encoding: str) -> Position:
        return Position(row, index_to_column(self.line(row), col, encoding))

    def apply_change(self, change: Change, encoding: str) -> None:
        self._snapshot = None
        if change.range is None:
            lines = _split(change.text)
            moved = _difference(self.lines, lines) if self.followers else None
            self.lines = lines
        else:
            moved = self._splice(change.range, change.text, encoding)
        if moved is not None:
            for follow in list(self.followers):
                follow(moved)

    def _splice(self, rng: RangeLike, text: str, encoding: str) -> Moved | None:
        """Replace a range (in either order; a position past the last line is the end of the
        text) and say where the change fell, when an edit follows the document."""
        (r0, c0), (r1, c1) = sorted((self._bound(rng.start, encoding), self._bound(rng.end, encoding)))
        head = self.lines[r0][:c0] if r0 < len(self.lines) else ""
        tail = self.lines[r1][c1:] if r1 < len(self.lines) else ""
        if c0 == 0 and 0 < r0 and self.lines[r0 - 1].endswith("\r") and (text + tail).startswith("\n"):
            r0, head = r0 - 1, self.lines[r0 - 1]  # "\r" then "\n" is one line break: join the lines
        moved = _where(r0, head, text, tail, (r1, c1)) if self.followers else None
        self.lines[r0 : r1 + 1] = _split(head + text + tail)
        return moved

    def _bound(self, pos: PositionLike, encoding: str) -> Index:
        """A change's position: past the last line, the end of the text (a row of its own when
        the text ends with a line break)."""
        if pos.line < len(self.lines):
            return self.to_index(pos, encoding)
        if not self.lines or self.lines[-1] != _strip_eol(self.lines[-1]):
            return len(self.lines), 0
        return len(self.lines) - 1, len(self.lines[-1])


def _where(row: int, head: str, text: str, tail: str, end: Index) -> Moved:
    """Where ``text``, put between ``head`` (from the start of ``row``) and ``tail`` (from ``end``),
    fell. A change that ends inside a "\\r\\n" (its text ends with "\\r", the tail starts with
    "\\n") takes in the line break, the smallest change the lines can say."""
    if (head + text).endswith("\r") and tail.startswith("\n"):
        return Moved((row, len(head)), (end[0] + 1, 0), _end_of(row, head + text + "\n"))
    return Moved((row, len(head)), end, _end_of(row, head + text))


def _difference(old: list[str], new: list[str]) -> Moved | None:
    """A whole-text change (from a client that syncs the full text) as the lines it changed;
    None when it changed nothing. Repeated lines make the block ambiguous: typing a copy of the
    selected lines above them reads as typing it below them just as well. So the block runs from
    the highest start any reading gives (lines both texts start with, counted without regard to
    the end) to the lowest end: an edit outside it is outside every reading."""
    if old == new:
        return None
    size = min(len(old), len(new))
    head = next((i for i in range(size) if old[i] != new[i]), size)
    tail = next((i for i in range(size) if old[-1 - i] != new[-1 - i]), size)
    overlap = max(0, head + tail - size)  # the rows the block can slide by
    tail -= overlap
    return Moved((head - overlap, 0), (len(old) - tail, 0), (len(new) - tail, 0))


def _end_of(row: int, text: str) -> Index:
    """Where ``text`` ends when it starts at the beginning of ``row``."""
    parts = _split(text) or [""]
    last = parts[-1]
    if last != _strip_eol(last):  # it ends with a line break
        return row + len(parts), 0
    return row + len(parts) - 1, len(last)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # str.splitlines's, not LSP's
_LSP_LINES = re.compile("[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _split(text: str) -> list[str]:
    """Lines with their ends, ended as LSP ends them. A lone surrogate (JSON allows
    ``"\\ud800"``; UTF-8 cannot carry it) becomes U+FFFD: one code point and one UTF-16 unit, like
    it, so positions do not move; left in, it made every prompt that included the document fail
    to encode."""
    if not text.isascii():
        text = _LONE_SURROGATE.sub("\ufffd", text)
    if _OTHER_BREAKS.search(text) is None:
        return text.splitlines(keepends=True)  # the same lines, faster
    return _LSP_LINES.findall(text)


class DocumentStore:
    """The open documents, keyed by URI, and where they were last edited (``edits``: (uri, row),
    newest last; read by the recent-edits context source)."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self.edits: deque[tuple[str, int]] = deque(maxlen=EDITS)
        self._opens = itertools.count(1)  # ``Document.opened``

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        doc = Document.from_text(uri, language_id, version, text)
        doc.opened = next(self._opens)
        self._docs[uri] = doc
        return doc

    def change(self, uri: str, version: int, changes: Iterable[Change], encoding: str) -> Document | None:
        doc = self._docs.get(uri)
        if doc is None:
            return None
        for change in changes:
            doc.apply_change(change, encoding)
            if change.range is not None:
                self.edits.append((uri, max(0, change.range.start.line)))
        doc.version = version
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def all(self) -> list[Document]:
        """Every open document, in a stable order (for prompt caching)."""
        return sorted(self._docs.values(), key=lambda d: d.uri)
