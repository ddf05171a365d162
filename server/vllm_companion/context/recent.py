"""Recently edited ranges of other open documents: what the user was just working on elsewhere
is what the next line here most often uses (a renamed function, a new field).

Rule: the document store keeps the last ``EDITS`` edit rows (documents.py); the newest rows of
other documents, one per ``AROUND``-line neighbourhood, become snippets of ``AROUND`` lines either
side. Edits of the current document are left out: its window already holds the ones nearby, and
leaving them out keeps the prompt's head stable while the user types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .sources import OpenDoc, Query, Snippet, fit

AROUND, MAX_SNIPPETS = 4, 4


def recent(query: Query, docs: Mapping[str, OpenDoc], edits: Sequence[tuple[str, int]], budget: int) -> list[Snippet]:
    picked: list[Snippet] = []
    seen: list[tuple[str, int]] = []
    for uri, row in reversed(edits):
        doc = docs.get(uri)
        if uri == query.uri or doc is None or any(u == uri and abs(r - row) <= 2 * AROUND for u, r in seen):
            continue
        seen.append((uri, row))
        text = "".join(doc.lines[max(0, row - AROUND) : row + AROUND + 1])
        picked.append(Snippet(doc.path, text, "recent-edits"))
        if len(picked) == MAX_SNIPPETS:
            break
    return fit(picked, budget)
