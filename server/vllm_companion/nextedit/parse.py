"""Each family's answer back to the editable region's new text, or None.

None means "no edit": the family's no-edit sentinel, an answer that did not finish (``length``,
a loop cut, the cap), or one that is garbled (markers missing, doubled, or left over). Marker
text must never reach the document: that is the failure people report with self-hosted Zeta 2
("sentinel text leaking into edits"), so whatever survives extraction is checked against the
family's ``sentinels`` and refused when any is left, and against every marker in any spelling
(markers.leaks: another case, spaced, fullwidth, look-alike letters, cut at the end, a
merge-conflict or ``NO_EDIT`` line: a hostile or confused engine, or a paired process answering in
another family's format, tests/adversarial/test_next_edit_model.py). The cursor marker a model
copies back is dropped, as Zed does (zeta_prompt.rs ``clean_zeta1_model_output``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .formats import (
    BY_NAME,
    GENERIC_NO_EDIT,
    REGION_END,
    REGION_START,
    SEED_NO_EDITS,
    SEED_SEPARATOR,
    SEED_UPDATED,
    SWEEP_CURSOR,
    ZED_CURSOR,
    ZETA_CURSOR,
    NextEditFormat,
)
from .markers import leaks

FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:\n```|\Z)", re.S)
WHOLE_FENCE = re.compile(r"\A\s*```[^\n`]*\n(.*)\n```\s*\Z", re.S)  # the answer is one fenced block
MAX_ANSWER_CHARS = 64_000  # a region is a few dozen lines; anything past this is not an answer
SWEEP_HEADER = re.compile(r"\A(?:original|current|updated)/[^\n]*:\d+:\d+[ \t]*(?:\n|\Z)")  # another block's


def parse_answer(family: str, text: str, finished: bool) -> str | None:
    """The region's new text from ``family``'s answer; ``finished``: it ended at its end marker or
    the engine's stop (not ``length``, a loop cut or the cap)."""
    fmt = BY_NAME[family]
    if not finished or len(text) > MAX_ANSWER_CHARS:
        return None
    region = EXTRACT[family](text)
    return _clean(region, fmt)


def _clean(region: str | None, fmt: NextEditFormat) -> str | None:
    if region is None:
        return None
    for cursor in (ZETA_CURSOR, ZED_CURSOR, SWEEP_CURSOR):
        region = region.replace(cursor, "")
    return None if any(s in region for s in fmt.sentinels) or leaks(region) else region


def _one_newline_off(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def _sweep(text: str) -> str | None:
    """The ``updated/`` block: everything up to the stop (``<|file_sep|>`` / end of text); an
    answer that starts with a block header of its own (another path or span) is not this block."""
    return None if SWEEP_HEADER.match(text) else _one_newline_off(text)


def _zeta(text: str) -> str | None:
    """Zed's parse_edits: exactly one start marker; the region starts on the next line and ends
    before ``\\n<|editable_region_end|>`` (the engine may have eaten that marker as a stop)."""
    if text.count(REGION_START) != 1 or text.count(REGION_END) > 1:
        return None
    after = text.split(REGION_START, 1)[1]
    newline = after.find("\n")
    if newline == -1:
        return None
    body = after[newline + 1 :]
    body = body.split(REGION_END, 1)[0] if REGION_END in body else body
    return _one_newline_off(body)


def _zeta2(text: str) -> str | None:
    """Seed-Coder: the new region then ``>>>>>>> UPDATED``; ``NO_EDITS`` alone means no edit."""
    body = text.split(SEED_UPDATED, 1)[0]
    if body.strip() == SEED_NO_EDITS or SEED_SEPARATOR.strip() in body.split("\n"):
        return None  # no edit, or the separator copied back (a line of its own, as the prompt has it)
    return _one_newline_off(body)


def _instinct(text: str) -> str | None:
    """The revised region as it is, to the character: Continue's InstinctProvider.extractCompletion
    returns the message unchanged and diffs it against the region's lines joined with "\\n"
    (core/nextEdit/providers/InstinctNextEditProvider.ts, BaseNextEditProvider.ts). So no line
    break is trimmed (a region ending in a blank line ends in "\\n"; an extra final one is
    edits.normalize's business), and a code fence or the tags are unwrapped only when they wrap
    the whole answer: a region may hold a fence of its own (a docstring, a Markdown file)."""
    whole = WHOLE_FENCE.match(text)
    body = whole.group(1) if whole else text
    if REGION_START in body or REGION_END in body:
        return _inner(body)
    return body


def _generic(text: str) -> str | None:
    """One fenced block holding the region, or ``NO_EDIT``."""
    stripped = text.strip()
    if stripped == GENERIC_NO_EDIT or stripped.strip("`").strip() == GENERIC_NO_EDIT:
        return None
    if "```" not in stripped:
        return None  # prose, or a truncated fence: not the region
    return _unwrap(stripped)


def _unwrap(text: str) -> str | None:
    fenced = WHOLE_FENCE.match(text) or FENCE.search(text)  # the whole answer first: a region may hold a fence
    body = fenced.group(1) if fenced else text
    return _inner(body) if REGION_START in body or REGION_END in body else body


def _inner(body: str) -> str | None:
    """The text between the region markers (each on a line of its own), or None unless there is
    exactly one pair."""
    if body.count(REGION_START) != 1 or body.count(REGION_END) != 1:
        return None
    body = body.split(REGION_START, 1)[1].split(REGION_END, 1)[0]
    return _one_newline_off(body[1:] if body.startswith("\n") else body)


EXTRACT: dict[str, Callable[[str], str | None]] = {
    "sweep": _sweep, "zeta": _zeta, "zeta2": _zeta2, "instinct": _instinct, "generic": _generic,
}
