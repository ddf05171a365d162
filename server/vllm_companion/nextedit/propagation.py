"""Edit propagation: the next-edit suggestion that needs no model (issue 22).

When the user's last edit renamed or retyped one identifier or literal (``count`` → ``total``,
``30`` → ``60``), the same change is offered at its next whole-word occurrence inside the edited
line's scope (scope.py): below the cursor first, then above it; other open documents only for a
name defined at module or class level (a ``def``/``class`` name, a module-level assignment). A
renamed parameter or local stays in its function, and where the scope holds no other occurrence
nothing is offered (before: 13 of 15 "no edit" cases of scripts/bench_next_edit.py got a wrong
edit, the same name in the next function). After an accepted suggestion (a chain), a name
that the file defines at module or class level goes on past the function of the call site just
renamed. An identifier's occurrences in comments and strings are skipped (lexing.py: a docstring's
mention is not a use); a literal's are not. It is instant on any
machine (a bounded scan, no model, no syntax tree: regex word boundaries are enough for the one
token the edit changed, and indentation or brace depth for its scope) and it is the reference the
model path is checked against.

Bounds: the token is at most ``MAX_TOKEN`` characters of ``\\w`` (or a number literal), escaped
(``re.escape``) before it becomes a pattern; at most ``MAX_SCAN`` lines are read per document either
side of the cursor and lines over ``MAX_LINE`` characters are skipped (a minified line would cost
the scan). One request reads at most ``MAX_CHARS`` characters in all documents together, the
scope's lines included, a line counting ``LINE_COST`` more (360,000 empty lines took 130 ms); only
lines that contain the token (a substring test, about 1 ns a character) reach the whole-word
pattern, and only those and the lines that may open or close a multi-line string reach the lexer,
at most ``MAX_REGEX_CHARS`` in all: the pattern costs about 65 ns a character on a line of the
token's own letters (``aaaa…`` for ``aaa``), and 17 documents of 20,000 such lines held the event
loop for minutes (measured on 2 cores: 4 documents of 2,000 lines took 2.6 s; now about 30 ms,
the scope's passes included, whatever the files, 0.1 s on a loaded machine;
tests/adversarial/test_next_edit.py and test_next_edit_scope.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .edits import common_ends
from .lexing import Lexer, in_code, language
from .scope import MAX_LINE, Budget, Scope, Text, exported, scope_of
from .types import RecordedEdit, Suggestion

__all__ = ["MAX_LINE", "MAX_SCAN", "MAX_TOKEN", "Lines", "Rename", "Target", "Text", "pattern", "propagate",
           "rename_of"]
SOURCE = "propagation"
MAX_TOKEN = 100
MAX_SCAN = 20_000
_WORD = re.compile(r"\w")
_TOKEN = re.compile(r"\w+|[-+]?\d[\w.]*")


@dataclass(frozen=True)
class Rename:
    """``old`` became ``new`` at (``row``, ``col``) of ``uri`` (the column as recorded: a cut line
    may shift it; propagate checks it against the document)."""

    old: str
    new: str
    uri: str
    row: int
    col: int
    accepted: bool = False  # the edit applied a suggestion (RecordedEdit.accepted): a chain goes on


@dataclass(frozen=True)
class Lines:
    uri: str
    lines: Text


@dataclass(frozen=True)
class Target:
    uri: str
    suggestion: Suggestion


def rename_of(edit: RecordedEdit | None) -> Rename | None:
    """The one token ``edit`` changed into another, if that is what it did, and where."""
    if edit is None:
        return None
    old, new = edit.before, edit.after
    p, s = common_ends(old, new)
    while p > 0 and _WORD.match(old[p - 1]):  # widen to whole words: "cou|nt" -> "count"
        p -= 1
    while s > 0 and _WORD.match(old[len(old) - s]):
        s -= 1
    a, b = old[p : len(old) - s], new[p : len(new) - s]
    if not (_token(a) and _token(b)) or a == b:
        return None
    return Rename(a, b, edit.uri, edit.start_row, p - (new.rfind("\n", 0, p) + 1), edit.accepted)


def _token(text: str) -> bool:
    return 0 < len(text) <= MAX_TOKEN and _TOKEN.fullmatch(text) is not None


def pattern(old: str) -> re.Pattern[str]:
    """Whole-word occurrences of ``old`` (escaped: the token is data, never a pattern)."""
    return re.compile(r"(?<!\w)" + re.escape(old) + r"(?!\w)")


def propagate(rename: Rename, here: Lines, row: int, col: int, others: Sequence[Lines]) -> list[Target]:
    """The next occurrence of the renamed token in its scope: below the cursor, above it, then,
    for a name defined at module or class level, other documents. The scope is read in the
    document the rename was made in; when that is not ``here`` only such a name is looked for."""
    budget = Budget()
    edited = here if here.uri == rename.uri else next((o for o in others if o.uri == rename.uri), None)
    at = _locate(rename, edited.lines, budget) if edited is not None else None
    if edited is None or at is None:
        return []
    scope = scope_of(edited.lines, rename.row, at[0], rename.new, edited.uri, budget)
    if scope is not None and rename.accepted and not scope.exported and exported(edited.lines, rename.new, budget):
        scope = Scope(0, len(edited.lines), True)  # an accepted call site of a renamed function: go on
    if scope is None or (edited is not here and not scope.exported):
        return []
    rx, old, ident = pattern(rename.old), rename.old, at[1]
    top, end = (scope.top, scope.end) if edited is here else (0, len(here.lines))
    if (found := _search(rx, old, here, (top, end), (row, col), budget, ident)) is not None:
        return [_target(here.uri, found, rename)]
    for other in others if scope.exported else ():
        if (found := _search(rx, old, other, (0, len(other.lines)), (0, 0), budget, ident)) is not None:
            return [_target(other.uri, found, rename)]
    return []


def _locate(rename: Rename, lines: Text, budget: Budget) -> tuple[int, bool] | None:
    """The column of the new token on the edited line (the recorded one, else its first whole-word
    occurrence there), and whether it is an identifier in code (not a literal, a string's word or
    a comment's); None when the line no longer holds it."""
    if not 0 <= rename.row < len(lines) or (line := budget.read(lines, rename.row)) is None:
        return None
    if not budget.search(line):
        return None
    rx, col = pattern(rename.new), rename.col
    if not (0 <= col and line[col : col + len(rename.new)] == rename.new and rx.match(line, col)):
        m = rx.search(line)
        if m is None:
            return None
        col = m.start()
    ident = _IDENT.fullmatch(rename.old) is not None and _IDENT.fullmatch(rename.new) is not None
    return col, ident and language(rename.uri) is not None and in_code(Lexer(rename.uri).masked(line), col)


def _target(uri: str, at: tuple[int, int], rename: Rename) -> Target:
    r, c = at
    return Target(uri, Suggestion(r, c, r, c + len(rename.old), rename.new, SOURCE))


def _search(rx: re.Pattern[str], token: str, doc: Lines, rows: tuple[int, int], cursor: tuple[int, int],
            budget: Budget, ident: bool) -> tuple[int, int] | None:
    """The first occurrence at or after ``cursor`` within ``rows`` (and ``MAX_SCAN`` lines of it),
    else the nearest one before it; an identifier's occurrences in comments and strings skipped."""
    (top, end), (row, col) = rows, cursor
    lexer, above = Lexer(doc.uri) if ident and language(doc.uri) is not None else None, None  # else no masking
    for r in range(max(top, row - MAX_SCAN), min(end, len(doc.lines), max(row, top) + 1 + MAX_SCAN)):
        if (line := budget.read(doc.lines, r)) is None:
            if budget.spent():
                break
            continue
        has = token in line
        lex = lexer is not None and (has or lexer.needed(line))
        if not (has or lex):
            continue
        if not budget.search(line) or (has and lex and not budget.search(line)):
            break  # the lexer and the pattern are charged each
        spans = lexer.masked(line) if lexer is not None and lex else []
        if not has:
            continue
        hits = [m.start() for m in rx.finditer(line) if in_code(spans, m.start())]
        if r > row and hits:
            return r, hits[0]
        if r == row and (after := [c for c in hits if c >= col]):
            return r, after[0]
        before = [c for c in hits if c + len(token) <= col] if r == row else hits
        above = (r, before[-1] if r == row else before[0]) if before else above
    return above


_IDENT = re.compile(r"[^\W\d]\w*")
