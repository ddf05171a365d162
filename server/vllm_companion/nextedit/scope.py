"""Where a rename may continue: the edited line's enclosing scope (issue 22).

Edit propagation used to search the whole file and the other open files, and offered a wrong
edit on 13 of 15 "no edit" cases of scripts/bench_next_edit.py (an unused parameter renamed: it
jumped to the same name in the next function), and its misses landed on the name in a docstring.
The rule here (prototyped and measured on the benchmark's 90 cases, docs/performance.md):
- Python (indentation): a ``def`` line's scope is its own body (a renamed parameter); any other
  line climbs to the nearest less-indented ``def``/``class`` and takes its block; a line with none
  above it is at module level: the whole file.
- Brace languages (JS/TS/Go/Rust/C/C++/Java/...): the same with brace depth: a function header
  (a line with ``(`` that opens a block, not ``if``/``for``/...) scopes to its block, another line
  climbs to the nearest unclosed block opened by a function or class header, else the whole
  file. Tree-sitter (context/parsing.py) would be exact but runs in a worker process under a
  budget: 40 ms a parse (a worker's round trip; 50 ms in-process) for a 6,400-line file where
  the scope and the search take 0.2 ms for a parameter and 1.1 ms for a class renamed
  (_pydecimal.py, 2 cores; docs/performance.md), and a file being typed in is backed off.
- Other languages: the whole file, and other files (the rule before the scope).
Comments and strings are told from code by lexing.py.
Every line read here is charged to the request's ``Budget`` (propagation.py's bounds).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Protocol

from .lexing import BRACES, INDENT, code_of, language

MAX_CHARS = 8_000_000  # characters looked at per request, all documents together
LINE_COST = 64  # what reading one line counts for, whatever its length (a file of empty lines)
MAX_REGEX_CHARS = 400_000  # characters that a pattern or the lexer searches per request
MAX_LINE = 5_000
MAX_HEADER = 64  # lines a signature may span
_INDENT_RX = re.compile(r"[ \t]*")
_PY_HEAD = re.compile(r"[ \t]*(?:(?:async[ \t]+)?def|class)\b")
_CONTROL = re.compile(r"[\s}]*(?:if|else|for|while|switch|catch|do|try|finally|with|return|match|loop)\b")
_CLASSY = re.compile(r"\b(?:class|struct|interface|impl|enum|trait|object|namespace|module)\b")
_DECL = re.compile(r"(?:\b(?:def|class|function|func|fn|struct|interface|type|enum|trait|const|let|var|val)"
                   r"\s+(?:\([^)]*\)\s*)?)$")


class Text(Protocol):
    """A document's lines, line ends stripped, read one at a time (no copy of the document)."""

    def __len__(self) -> int: ...
    def __getitem__(self, row: int) -> str: ...


class Budget:
    """What one request may still read (``MAX_CHARS``) and search (``MAX_REGEX_CHARS``)."""

    def __init__(self) -> None:
        self.chars, self.regex = MAX_CHARS, MAX_REGEX_CHARS

    def read(self, lines: Text, row: int) -> str | None:
        """``lines[row]`` when the budget allows reading it and it is not over ``MAX_LINE``."""
        if self.chars < 0 or self.regex < 0:
            return None
        line = lines[row]
        self.chars -= len(line) + LINE_COST
        return None if self.chars < 0 or len(line) > MAX_LINE else line

    def search(self, line: str) -> bool:
        """Whether a pattern or the lexer may still run over ``line`` (charged for it, and a line's
        cost more: the lexer's work per line is Python's, 20,000 short docstring lines took 100 ms)."""
        self.regex -= len(line) + LINE_COST
        return self.regex >= 0

    def spent(self) -> bool:
        return self.chars < 0 or self.regex < 0


@dataclass(frozen=True)
class Scope:
    top: int  # first row, inclusive
    end: int  # last row, exclusive
    exported: bool  # other open files may hold it too


def defines(line: str, col: int, token: str) -> bool:
    """``token`` at ``col`` of ``line`` is the name a definition gives: after ``def``/``class``/
    ``function``/``let``/..., a module-level ``NAME =``, or the name before a header's first ``(``."""
    head = line[:col]
    if _DECL.search(head[-80:]):  # a declaration's keyword is near (and a long line's search short)
        return True
    rest = line[col + len(token):].lstrip()
    if not head.strip() and rest.startswith((":", "=")) and not rest.startswith("=="):
        return True  # NAME = ..., NAME: T = ... at the start of the line
    return rest.startswith("(") and "(" not in head and "=" not in head and not _CONTROL.match(head) and (
        line.rstrip().endswith("{"))


def scope_of(lines: Text, row: int, col: int, token: str, uri: str, budget: Budget) -> Scope | None:
    """Where ``token`` (the new text at ``row``, ``col``) may have other occurrences; None when the
    edited line cannot be read (over ``MAX_LINE``, budget spent): no offer rather than a guess."""
    style = language(uri)
    if style is None:
        return Scope(0, len(lines), True)
    if (line := budget.read(lines, row)) is None or not budget.search(line):
        return None
    code = code_of(line, uri)
    defined = not token[0].isdigit() and defines(code, col, token)
    if _is_header(lines, row, code, style, uri, budget) and not defined:  # a parameter: the body
        return Scope(row, _block_end(lines, row, style, uri, budget), False)
    found = _enclosing(lines, row, style, uri, budget)
    if found is None or (defined and found[1]):  # module level, or a class's member: everywhere
        return Scope(0, len(lines), defined)
    return Scope(found[0], _block_end(lines, found[0], style, uri, budget), False)


def _is_header(lines: Text, row: int, code: str, style: str, uri: str, budget: Budget) -> bool:
    """``row`` starts a function: a ``def`` line, or a line with ``(`` that opens a block."""
    if style == INDENT:
        return _PY_HEAD.match(code) is not None and not code.lstrip().startswith("class")
    if "(" not in code or _CONTROL.match(code):
        return False
    if code.count("{") > code.count("}"):
        return True
    below = budget.read(lines, row + 1) if row + 1 < len(lines) else None
    return below is not None and below.lstrip().startswith("{")


def _indent(line: str) -> int | None:
    """The indentation of a line of code; None for a blank or comment-only line."""
    n = _INDENT_RX.match(line).end()  # type: ignore[union-attr]  # [ \t]* always matches
    return None if n == len(line) or line[n] == "#" else n


def _enclosing(lines: Text, row: int, style: str, uri: str, budget: Budget) -> tuple[int, bool] | None:
    """The nearest function or class header whose block holds ``row`` (and whether it is a
    class); None at module level."""
    if style == INDENT:
        return _enclosing_indent(lines, row, budget)
    level = 0
    for r in range(row - 1, max(-1, row - 1 - _MAX_CLIMB), -1):
        if budget.spent():
            return None
        if (line := budget.read(lines, r)) is None or not budget.search(line):
            continue
        code = code_of(line, uri)
        level += code.count("{") - code.count("}")
        if level <= 0:
            continue
        level = 0
        head = code if code.strip() != "{" or r == 0 else code_of(budget.read(lines, r - 1) or "", uri)
        if _CLASSY.search(head) and "(" not in head:
            return r, True
        if "(" in head and not _CONTROL.match(head):
            return r, False
    return None


def _enclosing_indent(lines: Text, row: int, budget: Budget) -> tuple[int, bool] | None:
    line = budget.read(lines, row)
    cur = _indent(line or "")
    for r in range(row - 1, max(-1, row - 1 - _MAX_CLIMB), -1):
        if not cur or budget.spent():
            return None
        if (line := budget.read(lines, r)) is None or (ind := _indent(line)) is None or ind >= cur:
            continue
        cur = ind
        if _PY_HEAD.match(line):
            return r, line.lstrip().startswith("class")
    return None


def _block_end(lines: Text, top: int, style: str, uri: str, budget: Budget) -> int:
    """The row after the block that the header at ``top`` opens (its signature may span lines)."""
    depth, opened, r = 0, False, top
    for r in range(top, min(len(lines), top + (MAX_HEADER if style == INDENT else _MAX_CLIMB))):
        if budget.spent():
            return r
        line = budget.read(lines, r)
        code = code_of(line, uri) if line is not None and budget.search(line) else ""
        opens, closes = (code.count("("), code.count(")")) if style == INDENT else (code.count("{"), code.count("}"))
        depth, opened = depth + opens - closes, opened or opens > 0
        if style == INDENT and depth <= 0:
            break
        if style == BRACES and opened and depth <= 0:
            return r + 1
    if style == BRACES:
        return r + 1
    base = _indent(budget.read(lines, top) or "") or 0
    end = r + 1
    while end < min(len(lines), top + _MAX_CLIMB) and not budget.spent():
        line = budget.read(lines, end)
        if line is not None and (ind := _indent(line)) is not None and ind <= base:
            break
        end += 1
    return end


_MAX_CLIMB = 20_000  # lines a scope may span (propagation's MAX_SCAN)


def exported(lines: Text, token: str, budget: Budget) -> bool:
    """``lines`` define ``token`` where other scopes see it: a ``def``/``class``/``function`` of
    that name, or an assignment to it at column 0 (the scope of a chain of accepted renames, whose
    last edit is a call site: its own line defines nothing)."""
    rx = re.compile(r"(?<!\w)" + re.escape(token) + r"(?!\w)")
    for r in range(min(len(lines), _MAX_CLIMB)):
        if budget.spent():
            return False
        if (line := budget.read(lines, r)) is None or token not in line or not budget.search(line):
            continue
        for m in itertools.islice(rx.finditer(line), 4):  # a name is defined once on a line
            if defines(line, m.start(), token) and (line[:1] not in " \t" or _NAMED.search(line[: m.start()])):
                return True
    return False


_NAMED = re.compile(r"\b(?:def|class|function|func|fn)\s+$")
