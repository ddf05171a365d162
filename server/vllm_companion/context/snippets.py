"""Snippets of other open documents most similar to the code before the cursor.

Rule (Copilot's "neighboring tabs", also Continue's): cut each other open document of the same
language into windows of ``WINDOW`` lines every ``STRIDE`` lines, score each by the Jaccard
similarity of its identifier set with the ``WINDOW`` lines before the cursor, and keep the best
windows above ``MIN_SCORE`` until the budget is spent. Reads only the documents' lines already in
memory, at most ``MAX_LINES`` of each and ``MAX_DOCS`` documents, so its cost is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .sources import OpenDoc, Query, Snippet, fit

WINDOW, STRIDE, MIN_SCORE = 20, 10, 0.1
MAX_LINES, MAX_DOCS = 5000, 8
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def words(lines: Sequence[str]) -> set[str]:
    return set(_WORD.findall("".join(lines)))


def similar(query: Query, others: Sequence[OpenDoc], budget_tokens: int) -> list[Snippet]:
    wanted = words(query.lines[max(0, query.row - WINDOW) : query.row + 1])
    if not wanted:
        return []
    scored: list[tuple[float, int, OpenDoc]] = []
    for doc in others[:MAX_DOCS]:
        lines = doc.lines[:MAX_LINES]
        for start in range(0, max(1, len(lines) - WINDOW // 2), STRIDE):
            found = words(lines[start : start + WINDOW])
            score = len(found & wanted) / len(found | wanted) if found else 0.0
            if score >= MIN_SCORE:
                scored.append((score, start, doc))
    scored.sort(key=lambda s: (-s[0], s[2].path, s[1]))
    picked: list[Snippet] = []
    taken: set[tuple[str, int]] = set()
    for _, start, doc in scored:
        if any(path == doc.path and abs(start - s) < WINDOW for path, s in taken):
            continue  # overlaps a window already taken
        taken.add((doc.path, start))
        picked.append(Snippet(doc.path, "".join(doc.lines[start : start + WINDOW]), "open-files"))
    return fit(picked, budget_tokens)
