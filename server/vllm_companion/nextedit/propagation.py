"""Edit propagation: the next-edit suggestion that needs no model (issue 22).

When the user's last edit renamed or retyped one identifier or literal (``count`` → ``total``,
``30`` → ``60``), the same change is offered at its next whole-word occurrence: in the current
document below the cursor first, then above it, then in the other open documents. It is instant
on any machine (a bounded scan, no model, no syntax tree: regex word boundaries are enough for the
one token the edit changed) and it is the reference the model path is checked against
(scripts/bench_next_edit.py).

Bounds: the token is at most ``MAX_TOKEN`` characters of ``\\w`` (or a number literal), escaped
(``re.escape``) before it becomes a pattern; at most ``MAX_SCAN`` lines are read per document and
lines over ``MAX_LINE`` characters are skipped (a minified line would cost the scan). One request
reads at most ``MAX_CHARS`` characters in all documents together, a line counting ``LINE_COST``
more (360,000 empty lines took 130 ms); only lines that contain the token (a substring test,
about 1 ns a character) reach the whole-word pattern, at most ``MAX_REGEX_CHARS`` of them: it costs
about 65 ns a character on a line of the token's own letters (``aaaa…`` for ``aaa``), and 17
documents of 20,000 such lines held the event loop for minutes (measured on 2 cores: 4 documents
of 2,000 lines took 2.6 s; now at most 30 ms whatever the files; tests/adversarial/test_next_edit.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .types import RecordedEdit, Suggestion

SOURCE = "propagation"
MAX_TOKEN = 100
MAX_SCAN = 20_000
MAX_LINE = 5_000
MAX_CHARS = 8_000_000  # characters looked at per request, all documents together
LINE_COST = 64  # what reading one line counts for, whatever its length (a file of empty lines)
MAX_REGEX_CHARS = 400_000  # characters of lines holding the token that the pattern searches
_WORD = re.compile(r"\w")
_TOKEN = re.compile(r"\w+|[-+]?\d[\w.]*")


@dataclass(frozen=True)
class Rename:
    old: str
    new: str


class Text(Protocol):
    """A document's lines, line ends stripped, read one at a time (no copy of the document)."""

    def __len__(self) -> int: ...
    def __getitem__(self, row: int) -> str: ...


@dataclass(frozen=True)
class Lines:
    uri: str
    lines: Text


@dataclass(frozen=True)
class Target:
    uri: str
    suggestion: Suggestion


def rename_of(edit: RecordedEdit | None) -> Rename | None:
    """The one token ``edit`` changed into another, if that is what it did."""
    if edit is None:
        return None
    old, new = edit.before, edit.after
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
        s += 1
    while p > 0 and _WORD.match(old[p - 1]):  # widen to whole words: "cou|nt" -> "count"
        p -= 1
    while s > 0 and _WORD.match(old[len(old) - s]):
        s -= 1
    a, b = old[p : len(old) - s], new[p : len(new) - s]
    if not (_token(a) and _token(b)) or a == b:
        return None
    return Rename(a, b)


def _token(text: str) -> bool:
    return 0 < len(text) <= MAX_TOKEN and _TOKEN.fullmatch(text) is not None


def pattern(old: str) -> re.Pattern[str]:
    """Whole-word occurrences of ``old`` (escaped: the token is data, never a pattern)."""
    return re.compile(r"(?<!\w)" + re.escape(old) + r"(?!\w)")


class _Budget:
    """What one request may still read (``MAX_CHARS``) and search (``MAX_REGEX_CHARS``)."""

    def __init__(self) -> None:
        self.chars, self.regex = MAX_CHARS, MAX_REGEX_CHARS

    def line(self, lines: Text, row: int, token: str) -> str | None:
        """``lines[row]`` when the budget allows reading it and it may hold ``token``, else None
        (and nothing more is read once the budget is spent)."""
        line = lines[row]
        self.chars -= len(line) + LINE_COST
        if self.chars < 0 or len(line) > MAX_LINE or token not in line:
            return None
        self.regex -= len(line)
        return line if self.regex >= 0 else None

    def spent(self) -> bool:
        return self.chars < 0 or self.regex < 0


def propagate(rename: Rename, here: Lines, row: int, col: int, others: Sequence[Lines]) -> list[Target]:
    """The next occurrence of the renamed token: below the cursor, above it, then other documents."""
    rx, budget = pattern(rename.old), _Budget()
    found = _below(rx, rename.old, here.lines, row, col, budget) or _above(rx, rename.old, here.lines, row, col, budget)
    if found is None:
        for other in others:
            if (found := _below(rx, rename.old, other.lines, 0, 0, budget)) is not None:
                return [_target(other.uri, found, rename)]
        return []
    return [_target(here.uri, found, rename)]


def _target(uri: str, at: tuple[int, int], rename: Rename) -> Target:
    r, c = at
    return Target(uri, Suggestion(r, c, r, c + len(rename.old), rename.new, SOURCE))


def _below(rx: re.Pattern[str], token: str, lines: Text, row: int, col: int, budget: _Budget) -> tuple[int, int] | None:
    """The first occurrence at or after (row, col), within ``MAX_SCAN`` lines and the budget."""
    for r in range(max(0, row), min(len(lines), row + 1 + MAX_SCAN)):
        if budget.spent():
            return None
        if (line := budget.line(lines, r, token)) is not None and (m := rx.search(line, col if r == row else 0)):
            return r, m.start()
    return None


def _above(rx: re.Pattern[str], token: str, lines: Text, row: int, col: int, budget: _Budget) -> tuple[int, int] | None:
    """The nearest occurrence before (row, col), scanning upwards, within ``MAX_SCAN`` lines and the
    budget (a cursor past the end scans up from the last line)."""
    row = min(row, len(lines))
    for r in range(row, max(-1, row - 1 - MAX_SCAN), -1):
        if budget.spent():
            return None
        if r >= len(lines) or (line := budget.line(lines, r, token)) is None:
            continue
        hits = [m.start() for m in rx.finditer(line) if r != row or m.end() <= col]
        if hits:
            return r, hits[-1] if r == row else hits[0]
    return None
