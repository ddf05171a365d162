"""LSP positions and their encodings: a client column counts UTF-8, UTF-16 or UTF-32 code units
(negotiated at initialize), the server indexes code points.
https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#positionEncodingKind
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
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
