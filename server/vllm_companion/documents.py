"""Open documents as lists of lines, with LSP position-encoding conversion.

pygls's own TextDocument re-splits the whole text on every access, which costs tens of
milliseconds per keystroke on a multi-megabyte file; here an incremental change touches only the
lines it edits, and a completion reads only the window it needs.
Each document also keeps a short log of where its changes fell (``Moved``), so an edit computed
on an earlier text can be moved onto the current one or refused (chat/rebase.py).
Positions: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#positionEncodingKind
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
EDITS = 64  # edit positions remembered, all documents together
LOG = 512  # changes remembered per document (an edit whose text is older is refused)
Index = tuple[int, int]  # (row, code-point column)


@dataclass(frozen=True)
class Position:
    """A client position: line, and column in the negotiated encoding's code units."""

    line: int
    character: int


class PositionLike(Protocol):
    @property
    def line(self) -> int: ...
    @property
    def character(self) -> int: ...


class RangeLike(Protocol):
    @property
    def start(self) -> PositionLike: ...
    @property
    def end(self) -> PositionLike: ...


@dataclass(frozen=True)
class Change:
    """An edit: ``text`` replaces ``range`` (None: the whole document)."""

    text: str
    range: RangeLike | None = None


@dataclass(frozen=True)
class Moved:
    """Where one applied change fell, in indices: the text ``start``..``end`` became
    ``start``..``new_end``."""

    start: Index
    end: Index
    new_end: Index


def _units(ch: str, encoding: str) -> int:
    cp = ord(ch)
    if encoding == UTF16:
        return 2 if cp > 0xFFFF else 1
    if encoding == UTF8:
        return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    return 1


def column_to_index(line: str, column: int, encoding: str) -> int:
    """Client column (in ``encoding`` code units) -> code-point index into ``line``; clamped."""
    if encoding == UTF32 or line.isascii():
        return max(0, min(column, len(line)))
    units = 0
    for i, ch in enumerate(line):
        if units >= column:
            return i
        units += _units(ch, encoding)
    return len(line)


def index_to_column(line: str, index: int, encoding: str) -> int:
    """Code-point index into ``line`` -> client column in ``encoding`` code units."""
    head = line[:index]
    if encoding == UTF32 or head.isascii():
        return len(head)
    return sum(_units(ch, encoding) for ch in head)


def _strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


@dataclass
class Document:
    uri: str
    language_id: str
    version: int
    lines: list[str] = field(default_factory=list)  # each keeps its line ending
    changes: int = 0  # applied since open
    log: deque[Moved] = field(default_factory=lambda: deque(maxlen=LOG))

    @classmethod
    def from_text(cls, uri: str, language_id: str, version: int, text: str) -> Document:
        return cls(uri, language_id, version, _split(text))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def line(self, row: int) -> str:
        """Line ``row`` without its line ending ('' past the end)."""
        return _strip_eol(self.lines[row]) if 0 <= row < len(self.lines) else ""

    def to_index(self, pos: PositionLike, encoding: str) -> tuple[int, int]:
        """Client position -> (row, code-point column), clamped into the document."""
        if not self.lines:
            return 0, 0
        if pos.line == len(self.lines) and self.lines[-1].endswith("\n"):
            return len(self.lines), 0  # the empty line after a final newline (splitlines has none)
        row = max(0, min(pos.line, len(self.lines) - 1))
        if pos.line >= len(self.lines):
            return row, len(self.line(row))
        return row, column_to_index(self.line(row), pos.character, encoding)

    def span(self, start: PositionLike, end: PositionLike, encoding: str) -> tuple[tuple[int, int], tuple[int, int]]:
        """Two client positions as (row, code-point column) indices, in order; an end past the
        last line takes the whole last line."""
        a, b = sorted((self.to_index(start, encoding), self.to_index(end, encoding)))
        if max(start.line, end.line) >= len(self.lines) and self.lines:
            b = (len(self.lines) - 1, len(self.lines[-1]))
        return a, b

    def text_in(self, start: PositionLike, end: PositionLike, encoding: str) -> str:
        """The text between two client positions."""
        return self.text_between(*self.span(start, end, encoding))

    def text_between(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        """The text between two (row, code-point column) indices, in either order, clamped."""
        if not self.lines:
            return ""
        (r0, c0), (r1, c1) = sorted((start, end))
        last = len(self.lines) - 1
        if r1 > last:
            r1, c1 = last, len(self.lines[last])
        r0 = min(max(0, r0), last)
        if r0 == r1:
            return self.lines[r0][c0:c1]
        return self.lines[r0][c0:] + "".join(self.lines[r0 + 1 : r1]) + self.lines[r1][:c1]

    def to_position(self, row: int, col: int, encoding: str) -> Position:
        return Position(row, index_to_column(self.line(row), col, encoding))

    def since(self, changes: int) -> list[Moved] | None:
        """The changes applied after the first ``changes``, oldest first; None when the log no
        longer reaches back that far."""
        missed = self.changes - changes
        if missed < 0 or missed > len(self.log):
            return None
        return list(self.log)[len(self.log) - missed :]

    def apply_change(self, change: Change, encoding: str) -> None:
        self.changes += 1
        rng = change.range
        if rng is None:
            lines = _split(change.text)
            self.log.append(_difference(self.lines, lines))
            self.lines = lines
            return
        start_row, start_col = self.to_index(rng.start, encoding)
        end_row, end_col = self.to_index(rng.end, encoding)
        if (end_row, end_col) < (start_row, start_col):
            start_row, start_col, end_row, end_col = end_row, end_col, start_row, start_col
        if rng.start.line >= len(self.lines):
            start_row, start_col = len(self.lines), 0
        if rng.end.line >= len(self.lines):
            end_row, end_col = len(self.lines), 0
        head = self.lines[start_row][:start_col] if start_row < len(self.lines) else ""
        tail = self.lines[end_row][end_col:] if end_row < len(self.lines) else ""
        if start_row == len(self.lines) and self.lines and not self.lines[-1].endswith("\n"):
            # Appending past the last line of a file without a final newline.
            start_row, head = start_row - 1, self.lines[-1]
            end_row, end_col = start_row, len(head)
        self.log.append(Moved((start_row, len(head)), (end_row, end_col), _end_of(start_row, head + change.text)))
        self.lines[start_row : end_row + 1] = _split(head + change.text + tail)


def _difference(old: list[str], new: list[str]) -> Moved:
    """A whole-text change (from a client that syncs the full text) as the lines it changed:
    the lines both texts start and end with are kept."""
    size = min(len(old), len(new))
    head = next((i for i in range(size) if old[i] != new[i]), size)
    tail = next((i for i in range(size - head) if old[-1 - i] != new[-1 - i]), size - head)
    return Moved((head, 0), (len(old) - tail, 0), (len(new) - tail, 0))


def _end_of(row: int, text: str) -> Index:
    """Where ``text`` ends when it starts at the beginning of ``row``."""
    parts = text.splitlines(keepends=True) or [""]
    last = parts[-1]
    if last and last.splitlines()[0] != last:  # it ends with a line break
        return row + len(parts), 0
    return row + len(parts) - 1, len(last)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _split(text: str) -> list[str]:
    """Lines with their ends. A lone surrogate (JSON allows ``"\\ud800"``; UTF-8 cannot carry it)
    becomes U+FFFD: one code point and one UTF-16 unit, like it, so positions do not move; left
    in, it made every prompt that included the document fail to encode."""
    if not text.isascii():
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text.splitlines(keepends=True)


class DocumentStore:
    """The open documents, keyed by URI, and where they were last edited (``edits``: (uri, row),
    newest last; read by the recent-edits context source)."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self.edits: deque[tuple[str, int]] = deque(maxlen=EDITS)

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        doc = Document.from_text(uri, language_id, version, text)
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
