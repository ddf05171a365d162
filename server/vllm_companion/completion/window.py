"""The window around the cursor: a prefix and a suffix, cut to a token budget (tokens.py).

Windows are cut on line boundaries and their far edges snap to multiples of ``STEP`` lines, so
consecutive requests while typing share the longest possible prompt prefix and vLLM's automatic
prefix caching reuses the KV cache. The suffix takes at most its share of the budget
(``Budget.suffix``), the prefix the rest. Only the lines inside the window are read, so the cost
does not grow with the file size; lines longer than ``MAX_LINE_CHARS`` are clipped near the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..documents import Document
from ..tokens import STEP, SUFFIX_SHARE, Budget, chars_within, estimate_tokens

MAX_LINE_CHARS = 2000  # longer lines (minified code, data) are clipped near the cursor


@dataclass(frozen=True)
class Window:
    prefix: str
    suffix: str
    line_prefix: str  # current line up to the cursor
    line_suffix: str  # current line after the cursor
    start_row: int


def _clip_left(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[-max_chars:]


def _clip_right(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars]


def build_window(
    doc: Document, row: int, col: int, budget: Budget, insert: str = "", replace_from: int | None = None
) -> Window:
    """Prefix and suffix around (row, col); ``insert`` replaces ``line[replace_from:col]`` as if typed."""
    line = doc.line(row)
    line_prefix = line[: col if replace_from is None else replace_from] + insert
    line_suffix = line[col:]
    eol = doc.lines[row][len(line) :] if row < len(doc.lines) else ""
    cur_prefix = _clip_left(line_prefix, MAX_LINE_CHARS)
    cur_suffix = _clip_right(line_suffix, MAX_LINE_CHARS)
    total = budget.prompt_tokens
    used = estimate_tokens(cur_prefix) + estimate_tokens(cur_suffix)

    suffix_rows, used = _take(doc, range(row + 1, len(doc.lines)), budget.suffix(), used)
    end = row + 1 + suffix_rows
    if end < len(doc.lines):
        end = max(row + 1, end - end % STEP)  # snap the far edge down to a step
    suffix_lines = [_clip_right(doc.lines[r], MAX_LINE_CHARS) for r in range(row + 1, end)]
    used = estimate_tokens(cur_prefix) + estimate_tokens(cur_suffix) + sum(map(estimate_tokens, suffix_lines))

    prefix_rows, used = _take(doc, range(row - 1, -1, -1), total, used)
    start = row - prefix_rows
    if start > 0:
        start = min(row, start + (-start) % STEP)  # snap the far edge up to a step
    prefix_lines = [_clip_left(doc.lines[r], MAX_LINE_CHARS) for r in range(start, row)]
    if used > total:  # the current line alone is over budget: keep what fits nearest the cursor
        keep = chars_within(total)
        cur_prefix, cur_suffix = cur_prefix[-keep:] if keep else "", cur_suffix[: int(keep * SUFFIX_SHARE)]
        prefix_lines, suffix_lines = [], []
    prefix = "".join(prefix_lines) + cur_prefix
    suffix = cur_suffix + eol + "".join(suffix_lines)
    return Window(prefix, suffix, line_prefix, line_suffix, start)


def _take(doc: Document, rows: range, limit: int, used: int) -> tuple[int, int]:
    """How many of ``rows`` (in order) fit under ``limit`` tokens, starting from ``used``."""
    count = 0
    for r in rows:
        cost = estimate_tokens(_clip_left(doc.lines[r], MAX_LINE_CHARS))
        if used + cost > limit:
            break
        used += cost
        count += 1
    return count, used
