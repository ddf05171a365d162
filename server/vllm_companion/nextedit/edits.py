"""From a model's predicted region to an edit the editor can show (issue 22, "From the model's
answer to an edit").

The model rewrites the editable region; what the editor needs is the smallest replacement. The
two texts are compared line by line (difflib, bounded: ``MAX_LINES``), each changed block is
trimmed to the characters that differ, and the blocks that pass the filters become one
replacement (they are one prediction, so one edit: Copilot's ``edits`` are alternatives, not a
sequence). Filters, each a failure people report with self-hosted next-edit models (Zed's issues
on Zeta 2 deleting regions):
- an answer that changes nothing, or empties a non-empty region;
- a block that undoes the user's last edit (the model copying the "before" of its history);
- a block that unbalances brackets (``()[]{}`` counted in the block's old and new text);
- anything outside the region: an answer that is not a plausible rewrite of it (over
  ``GROWTH`` times its lines), or that copies the context lines next to it (the model answered
  the whole excerpt: the edit would duplicate them), is refused whole;
- an answer that drops at least half of the region's lines (``DROP``): a copy of the region cut
  short (an end marker met early, a model that stopped), the failure that deletes code;
- a block that writes control, bidi or invisible characters the region did not have (NUL, ESC,
  U+202E and the other Trojan Source characters, zero-width spaces, U+2028): never typed by hand,
  they hide what the code does (CVE-2021-42574);
- a block that touches an inline secret of the region, or writes one, or writes a redaction
  placeholder (``<redacted:KIND:N>``) the region did not have there (``touches_secret``): the region
  went to the model redacted and the answer had its placeholders put back, so an answer that moved
  a placeholder (or echoed the user's own text that looks like one, or one from the history or the
  context lines, numbered on their own) would otherwise copy a secret to a new place or write the
  placeholder into the code. The edit never changes a secret (docs/security.md).
Positions are code points in document rows; lsp/nextedit.py converts them to UTF-16 (CRLF is the
edge's business too: ``with_eol`` gives the text the document's line ending).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .types import RecordedEdit, Region, Suggestion

MAX_LINES = 400  # lines of a predicted region compared at all (difflib is quadratic in the worst case)
GROWTH = 4  # a predicted region may have at most this many times the region's lines (+ SLACK)
SLACK = 20
BRACKETS = ("()", "[]", "{}")
DROP = 0.5  # an answer with this share of the region's lines gone (and at least 2) is a truncated copy
ECHO = 3  # context lines next to the region compared with the answer's first and last lines
HIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
PLACEHOLDER = re.compile(r"<redacted:[^<>\n]{0,64}>", re.I)  # privacy.redact's, and anything spelled like one


@dataclass(frozen=True)
class Hunk:
    """One changed block, as offsets into the region's text: text[a:b] becomes ``new``."""

    a: int
    b: int
    old: str
    new: str


def normalize(predicted: str, region: Region) -> str:
    """The answer in the region's terms: "\\n" line ends; a final line break the region lacks dropped."""
    text = predicted.replace("\r\n", "\n").replace("\r", "\n")
    if text.endswith("\n") and not region.text.endswith("\n"):
        text = text[:-1]
    return text


def hunks(old: str, new: str) -> list[Hunk] | None:
    """The changed blocks between two texts, each trimmed to the characters that differ; None
    when ``new`` is too large to be a rewrite of ``old``."""
    a_lines, b_lines = old.split("\n"), new.split("\n")
    if len(b_lines) > min(MAX_LINES, GROWTH * len(a_lines) + SLACK) or len(a_lines) > MAX_LINES:
        return None
    a_off, b_off = _offsets(a_lines), _offsets(b_lines)
    old_nl, new_nl = old + "\n", new + "\n"  # a virtual final line break: every line ends the same
    out: list[Hunk] = []
    matcher = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        hunk = _inside(_trim(a_off[i1], old_nl[a_off[i1] : a_off[i2]], new_nl[b_off[j1] : b_off[j2]]), old)
        if hunk is not None and hunk.old != hunk.new:
            out.append(hunk)
    return out


def _offsets(lines: list[str]) -> list[int]:
    offs = [0]
    for line in lines:
        offs.append(offs[-1] + len(line) + 1)
    return offs


def common_ends(old: str, new: str) -> tuple[int, int]:
    """How many characters ``old`` and ``new`` share at the start, then at the end (never
    overlapping): what is left between them is the change (here and ``propagation.rename_of``)."""
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
        s += 1
    return p, s


def _trim(at: int, old: str, new: str) -> Hunk:
    p, s = common_ends(old, new)
    return Hunk(at + p, at + len(old) - s, old[p : len(old) - s], new[p : len(new) - s])


def _inside(hunk: Hunk, old: str) -> Hunk | None:
    """A hunk that takes the virtual final line break: the same change one character earlier
    (deleting the last lines deletes the line break before them), or None if it cannot be."""
    if hunk.b <= len(old):
        return hunk
    shifted = (old + "\n")[hunk.a - 1 : hunk.a] + hunk.new  # one character earlier: the same result
    if hunk.a == 0 or not shifted.endswith("\n"):
        return None
    return Hunk(hunk.a - 1, hunk.b - 1, (old + "\n")[hunk.a - 1 : hunk.b - 1], shifted[:-1])


def reverts(hunk: Hunk, last: RecordedEdit | None) -> bool:
    """Whether ``hunk`` puts back what the user's last edit took out (and takes out what it put in)."""
    if last is None:
        return False
    change = _trim(0, last.before, last.after)
    removed, added = change.old, change.new
    if not (removed or added):
        return False
    return hunk.old.strip() == added.strip() and hunk.new.strip() == removed.strip()


def balanced(hunk: Hunk) -> bool:
    """The block leaves each kind of bracket as (un)balanced as it found it."""
    return all(hunk.old.count(p[0]) - hunk.old.count(p[1]) == hunk.new.count(p[0]) - hunk.new.count(p[1])
               for p in BRACKETS)


def touches_secret(hunk: Hunk, text: str, secrets: Sequence[str]) -> bool:
    """Whether ``hunk`` (of the region ``text``) changes or borders an inline secret, writes one, or
    writes more redaction placeholders than it replaces."""
    for secret in secrets:
        if secret in hunk.new:
            return True
        at = text.find(secret)
        while at >= 0:
            if hunk.a < at + len(secret) and at < max(hunk.b, hunk.a + 1):
                return True
            at = text.find(secret, at + 1)
    return len(PLACEHOLDER.findall(hunk.new)) > len(PLACEHOLDER.findall(hunk.old))


def suggestions(region: Region, predicted: str | None, last: RecordedEdit | None, source: str,
                secrets: Sequence[str] = ()) -> list[Suggestion]:
    """The model's predicted region as at most one replacement in the document; ``secrets``: the
    inline secrets the region held (``Redaction.found``), already put back in ``predicted``."""
    if predicted is None:
        return []
    new = normalize(predicted, region)
    if not plausible(region, new):
        return []
    blocks = hunks(region.text, new)
    hidden = set(HIDDEN.findall(region.text))
    kept = [h for h in blocks or [] if balanced(h) and not reverts(h, last)
            and not touches_secret(h, region.text, secrets) and set(HIDDEN.findall(h.new)) <= hidden]
    if not kept:
        return []
    a, b = kept[0].a, kept[-1].b
    text, at = "", a
    for h in kept:
        text += region.text[at : h.a] + h.new
        at = h.b
    (r0, c0), (r1, c1) = _position(region, a), _position(region, b)
    return [Suggestion(r0, c0, r1, c1, text, source)]


def plausible(region: Region, new: str) -> bool:
    """``new`` may be a rewrite of the region: not emptied, not cut short (``DROP``), and not a
    copy of the excerpt around it (it starts with the lines above or ends with those below)."""
    old, lines = region.text.split("\n"), new.split("\n")
    if region.text.strip() and not new.strip():
        return False  # the region emptied: the failure that deletes code, never a prediction
    if len(old) - len(lines) >= max(2, DROP * len(old)):
        return False
    above = region.before.split("\n")[-ECHO:] if region.before.strip() else []
    below = region.after.split("\n")[:ECHO] if region.after.strip() else []
    starts = bool(above) and lines[: len(above)] == above and old[: len(above)] != above
    ends = bool(below) and lines[-len(below) :] == below and old[-len(below) :] != below
    return not (starts or ends)


def _position(region: Region, offset: int) -> tuple[int, int]:
    """An offset into the region's text as (document row, code-point column)."""
    head = region.text[:offset]
    row = head.count("\n")
    return region.start_row + row, offset - (head.rfind("\n") + 1)


def with_eol(text: str, eol: str) -> str:
    """``text``'s line breaks as the document's (``\\r\\n`` in a CRLF file)."""
    return text if eol == "\n" else text.replace("\n", eol)


def eol_of(first_line: str) -> str:
    """A document's line ending, from its first line's."""
    if first_line.endswith("\r\n"):
        return "\r\n"
    return "\r" if first_line.endswith("\r") else "\n"
