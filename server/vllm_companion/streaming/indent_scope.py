"""Cut a multi-line answer at the end of the current indentation scope.

If the user started the cursor's line and it opens a block (ends with ``:``, ``{``, ``(``, ``[``,
``=>``, ``do``, ``then``), the scope is that block: the first later line indented at or below the
opener ends it. Otherwise (a fresh line, or a line that opens nothing) the scope is the enclosing
block: the first line indented below the cursor line ends it; at the top level (indent 0) a
blank line followed by new top-level code ends it. A lone closing bracket (or ``end``) that closes
the scope is kept, then the output stops.

When the cursor sits at the line's indentation, that indentation is the scope's, whatever
whitespace the model puts before its first word: counting the model's extra space cut C macro
continuations and argument lists after one line (quality benchmark, 60 cases: block edit
similarity 0.22 with it, raw call 0.27).
"""

from __future__ import annotations

import re

from .pipeline import Cut, LineStage

_OPENERS = re.compile(r"(?:[:{(\[]|=>|\bdo|\bthen)\s*(?:#.*|//.*)?$")
_CLOSER = re.compile(r"^\s*(?:[)\]}]+[;,)]*|end|fi|done|esac)\s*$")


class IndentScope(LineStage):
    def __init__(self, line_prefix: str) -> None:
        super().__init__()
        self.line_prefix = line_prefix
        self.base = 0
        self.opens = False
        self.blank_seen = False

    def on_line(self, text: str, begin: int, end: int, index: int) -> Cut | None:
        line = text[begin:end]
        if index == 0:
            first = self.line_prefix + line
            self.base = len(first) - len(first.lstrip(" \t"))
            if self.line_prefix and not self.line_prefix.strip():
                self.base = len(self.line_prefix)  # the cursor is at the line's indentation
            self.opens = bool(self.line_prefix.strip()) and bool(_OPENERS.search(first.rstrip()))
            return None
        if not line.strip():
            self.blank_seen = True
            return None
        indent = len(line) - len(line.lstrip(" \t"))
        ends = indent <= self.base if self.opens else indent < self.base
        if not self.opens and self.base == 0 and self.blank_seen and indent == 0:
            ends = True
        self.blank_seen = False
        if not ends:
            return None
        if _CLOSER.match(line) and (indent == self.base or not self.opens):
            return Cut(end, "scope-close")
        return Cut(max(0, begin - 1), "scope-end")
