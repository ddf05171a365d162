"""How much of an accepted suggestion is still in the document: bounded, and computed off the loop.

The share is the accepted text's characters still found, in order, around where it went
(difflib's matching blocks of ``MIN_RUN`` or more characters). difflib costs about the product of
the two lengths: comparing a 4,000-character accept with a 20,000-character region on the event
loop stalled the server for 4.4 s (issue 19, point 7). So at most ``CAP`` characters of the
accepted text are compared, each against at most ``WINDOW`` characters of the document: a longer
accept is judged by its first and last ``CAP // 2`` characters, each near where it should be. The
regions are cut on the event loop (slices, no matching); ``share`` runs in the store's writer
thread. Measured (Python 3.11, this sandbox's CPU): 2-4 ms for code of any length, 0.1 s at worst
(one character repeated, difflib's quadratic case), against 4.4 s before.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

CAP = 512  # characters of the accepted text compared
WINDOW = 4 * CAP  # characters of the document each part is compared with
MIN_RUN = 4  # characters: shorter matches are letters that happen to recur, not surviving text
AFTER = 8  # lines after the accepted text that its region takes in (it may have been pushed down)


@dataclass(frozen=True)
class Regions:
    """The document around the accepted text: ``head`` for a short accept (compared whole), or
    around its start (``head``) and its end (``tail``) for a long one."""

    head: str
    tail: str | None = None


def regions(lines: Sequence[str] | None, row: int, text: str) -> Regions | None:
    """The parts of the document (``lines``, each with its newline) that ``share`` compares; None
    when the document is gone."""
    if lines is None or not text:
        return None
    n = text.count("\n") + 1
    if len(text) <= CAP:
        return Regions(_around(lines, row, row + n, head=True))
    head_lines = text[: CAP // 2].count("\n") + 1
    tail_lines = text[-(CAP // 2) :].count("\n") + 1
    return Regions(_around(lines, row, row + head_lines, head=True),
                   _around(lines, row + n - tail_lines, row + n, head=False))


def _around(lines: Sequence[str], first: int, last: int, head: bool) -> str:
    """Lines ``first`` to ``last`` (where the text went: their first or last ``2 * CAP``
    characters), with up to ``CAP`` characters of the 2 lines before and the ``AFTER`` lines after
    (the text may have moved a little): at most ``WINDOW`` characters."""
    before = "".join(lines[max(0, first - 2) : max(0, first)])[-CAP:]
    own = "".join(lines[max(0, first) : last])
    after = "".join(lines[last : last + AFTER])[:CAP]
    return before + (own[: 2 * CAP] if head else own[-2 * CAP :]) + after


def share(text: str, where: Regions | None) -> float:
    """The share of ``text`` still there (0 when the document closed)."""
    if where is None or not text:
        return 0.0
    if where.tail is None:
        return _kept(text[:CAP], where.head) / min(len(text), CAP)
    half = CAP // 2
    return (_kept(text[:half], where.head) + _kept(text[-half:], where.tail)) / (2 * half)


def _kept(part: str, region: str) -> int:
    matcher = difflib.SequenceMatcher(None, part, region, autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks() if b.size >= MIN_RUN or b.size == len(part))
