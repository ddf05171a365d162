"""Comments and string literals of a document's lines, lexed one line at a time (issue 22).

Edit propagation skips an identifier's mentions in comments and strings (a docstring's
``count: how many`` is not a use of ``count``: before, those were where below-the-cursor misses of
scripts/bench_next_edit.py landed) and its scope rule (scope.py) counts only code's braces and
colons. A line is lexed with the state the previous one left (a multi-line string or block
comment still open); a Python f-string and a JS template are code (their fields are), a quote that
closes nothing (a Rust lifetime, an apostrophe) is not a string. The patterns are linear in the
line (no nested repetition), and callers charge each lexed line to the request's budget.
"""

from __future__ import annotations

import re

INDENT, BRACES = "indent", "braces"
_EXT = {**dict.fromkeys(("py", "pyi", "pyw"), INDENT), **dict.fromkeys((
    "js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "go", "rs", "c", "h", "cc", "cpp", "cxx", "hpp", "hh",
    "java", "kt", "kts", "cs", "swift", "scala", "php", "dart"), BRACES)}
_SQ_STRINGS = {"js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "php", "dart"}  # else '' is a char
_LEX_PY = re.compile(r"#|(?:(?<!\w)(?P<pre>[rRbBuUfF]{1,2}))?(?P<q>\"\"\"|'''|\"|')")
_MARKS_PY, _MARKS_BRACES = re.compile("\"\"\"|'''"), re.compile(r"/\*|\*/")
_LEX_BRACES = re.compile(r"//|/\*|(?P<q>\"|')")
_CLOSE = {'"': re.compile(r'(?:\\.|[^"\\])*"'), "'": re.compile(r"(?:\\.|[^'\\])*'"),
          "'c": re.compile(r"(?:\\.[^']{0,8}|[^'\\])'"), '"""': re.compile(r'"""'), "'''": re.compile(r"'''"),
          "/*": re.compile(r"\*/")}


def language(uri: str) -> str | None:
    """The scope style of ``uri`` by its extension; None: unknown (whole file, other files)."""
    name = uri.rsplit("/", 1)[-1]
    return _EXT.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None


class Lexer:
    """Comments and strings of one document's lines, read in order (the state crosses lines)."""

    def __init__(self, uri: str) -> None:
        ext = uri.rsplit(".", 1)[-1].lower()
        self.python, self.sq = language(uri) == INDENT, ext in _SQ_STRINGS
        self.state: str | None = None  # an open multi-line string or block comment
        self._marks = _MARKS_PY if self.python else _MARKS_BRACES

    def needed(self, line: str) -> bool:
        """Whether ``line`` may open or close a multi-line string or comment (else its state is
        the next line's too, and it need not be lexed unless it holds the token)."""
        return self.state is not None or self._marks.search(line) is not None

    def masked(self, line: str) -> list[tuple[int, int]]:
        """The spans of ``line`` that are comment or string; advances the state to the next line."""
        spans: list[tuple[int, int]] = []
        pos = 0
        while pos <= len(line):
            if self.state is not None:
                m = _CLOSE[self.state].search(line, pos)
                end = m.end() if m else len(line)
                spans.append((pos, end))
                self.state = None if m else self.state
                if m is None:
                    return spans
                pos = end
                continue
            if (m := (_LEX_PY if self.python else _LEX_BRACES).search(line, pos)) is None:
                return spans
            pos = self._open(m, line, spans)
        return spans

    def _open(self, m: re.Match[str], line: str, spans: list[tuple[int, int]]) -> int:
        """A comment or quote at ``m``: masks what it covers; where the scan goes on."""
        q = m.group("q")
        if q is None:  # a comment: to the end of the line, or a block comment
            self.state = "/*" if m.group() == "/*" else None
            if self.state is None:
                spans.append((m.start(), len(line)))
                return len(line) + 1
            spans.append((m.start(), m.end()))
            return m.end()
        if self.python and "f" in (m.group("pre") or "").lower():  # an f-string's fields are code
            closing = _CLOSE[q].search(line, m.end())
            return closing.end() if closing else len(line) + 1
        if len(q) == 3:
            self.state = q
            spans.append((m.start(), m.end()))
            return m.end()
        closing = _CLOSE["'c" if q == "'" and not (self.python or self.sq) else q].match(line, m.end())
        if closing is None:
            return m.end()  # a lone quote (a Rust lifetime, an apostrophe): not a string
        spans.append((m.start(), closing.end()))
        return closing.end()


def in_code(spans: list[tuple[int, int]], col: int) -> bool:
    return not any(a <= col < b for a, b in spans)


def code_of(line: str, uri: str) -> str:
    """``line`` with its comments and strings blanked, lexed alone (a scope's braces, colons)."""
    out = list(line)
    for a, b in Lexer(uri).masked(line):
        out[a:b] = " " * (b - a)
    return "".join(out)
