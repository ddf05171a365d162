"""The editable region around the cursor, as a next-edit model is asked to rewrite it.

Sizes follow the published formats: Zeta's editable region is a few lines above and about ten
below the cursor, Sweep's ``original/current/updated`` blocks about 20 lines; ``ABOVE``/``BELOW``
sit between them and ``CONTEXT`` lines either side are given as read-only context. Every line is
bounded (``MAX_LINE``): a region with a longer line is not sent at all (a minified file is no
place for a predicted rewrite, and it would fill the prompt), and the text is redacted before it
reaches a prompt (``privacy.redact``; ``Redaction.restore`` puts the secrets back in the answer).
"""

from __future__ import annotations

from dataclasses import replace

from ..documents import Document
from ..privacy import Redaction, redact
from .types import Region

ABOVE, BELOW, CONTEXT = 5, 10, 20
MAX_LINE = 1_000


def region(doc: Document, path: str, row: int, col: int) -> tuple[Region, Region, Redaction] | None:
    """The region at (row, col) of ``doc``: as sent (redacted), as it is (for the diff), and the
    redaction that puts the secrets back in the answer; None when a line in it is too long."""
    lo, hi = max(0, row - ABOVE), min(len(doc.lines), row + BELOW + 1)
    if hi <= lo:
        return None
    lines = [doc.line(r) for r in range(lo, hi)]
    above = [doc.line(r) for r in range(max(0, lo - CONTEXT), lo)]
    below = [doc.line(r) for r in range(hi, min(len(doc.lines), hi + CONTEXT))]
    if any(len(x) > MAX_LINE for x in (*lines, *above, *below)):
        return None
    found = redact("\n".join(lines))
    before, after = redact("\n".join(above)).text, redact("\n".join(below)).text
    col = min(col, len(doc.line(row)))
    sent = Region(doc.uri, path, doc.language_id, lo, hi, found.text, row, col, before, after)
    return sent, replace(sent, text="\n".join(lines)), found
