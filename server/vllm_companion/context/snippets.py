"""Snippets of other open documents most similar to the code before the cursor.

Rule (Copilot's "neighboring tabs", also Continue's): cut each other open document of the same
language into windows of ``WINDOW`` lines every ``STRIDE`` lines, score each by the Jaccard
similarity of its identifier set with the ``WINDOW`` lines before the cursor, and keep the best
windows above ``MIN_SCORE`` until the budget is spent. Reads only the documents' lines already in
memory, at most ``MAX_LINES`` of each and ``MAX_DOCS`` documents, so its cost is bounded.

Each document's windows and their identifier sets are computed once per version (``_windows``,
keyed by the document's snapshot, documents.py): recomputed on every completion, the regex over
three other open 5,000-line files held the GIL for tens of ms per request, and the completion
waited for it (issue 21, docs/performance.md). Scoring is then one set intersection per window.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from .sources import OpenDoc, Query, Snippet, fit
from .versions import PerVersion

WINDOW, STRIDE, MIN_SCORE = 20, 10, 0.1
MAX_LINES, MAX_DOCS = 5000, 8
KEPT = 4 * MAX_DOCS  # documents whose windows are kept (their latest version only)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
Windows = tuple[tuple[int, frozenset[str]], ...]  # (first row, identifiers) per window
_kept: PerVersion[Windows] = PerVersion(KEPT)  # uri -> (snapshot, its windows)


def words(lines: Sequence[str]) -> set[str]:
    return set(_WORD.findall("".join(lines)))


def _windows(doc: OpenDoc) -> Windows:
    """The windows of ``doc`` with their identifier sets (interned: a file's windows share its few
    hundred names), kept while its lines are the same snapshot (a tuple, documents.py: the same
    object while the document is unchanged); a list may change, so it is never kept."""
    lines = doc.lines
    if (hit := _kept.get(doc.uri, lines)) is not None:
        return hit
    head = lines[:MAX_LINES]
    found = tuple((start, frozenset(map(sys.intern, _WORD.findall("".join(head[start : start + WINDOW])))))
                  for start in range(0, max(1, len(head) - WINDOW // 2), STRIDE))
    _kept.put(doc.uri, lines, found)
    return found


def similar(query: Query, others: Sequence[OpenDoc], budget_tokens: int) -> list[Snippet]:
    wanted = words(query.lines[max(0, query.row - WINDOW) : query.row + 1])
    if not wanted:
        return []
    scored: list[tuple[float, int, OpenDoc]] = []
    for doc in others[:MAX_DOCS]:
        for start, found in _windows(doc):
            common = len(found & wanted)  # |found | wanted| = |found| + |wanted| - common
            score = common / (len(found) + len(wanted) - common) if found else 0.0
            if score >= MIN_SCORE:
                scored.append((score, start, doc))
    scored.sort(key=lambda s: (-s[0], s[2].path, s[1]))
    picked: list[Snippet] = []
    taken: dict[str, set[int]] = {}  # path -> starts taken (a lookup, not a scan: issue 21)
    for _, start, doc in scored:
        starts = taken.setdefault(doc.path, set())
        if any(s in starts for s in range(start - (WINDOW - 1) // STRIDE * STRIDE, start + WINDOW, STRIDE)):
            continue  # overlaps a window already taken (starts are multiples of STRIDE)
        starts.add(start)
        picked.append(Snippet(doc.path, "".join(doc.lines[start : start + WINDOW]), "open-files"))
    return fit(picked, budget_tokens)
