"""Each next-edit family's answer as its model writes it, for a fake engine to replay.

Used by tests/e2e/test_next_edit_replay.py and scripts/bench_next_edit.py: given the region and
the text it should become, the answer in the family's trained output shape (what comes after
the prompt, up to and including the end marker the engine would stop at), split into small
chunks like a token stream. ``None`` for ``new`` is each family's way of saying "no edit".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vllm_companion.nextedit.formats import REGION_END, REGION_START, ZETA_CURSOR
from vllm_companion.nextedit.types import Region

from .fake_backend import Reply, canned

# What only each family's prompt contains, so one fake engine can serve every family (in this
# order: Zeta's "### Response:\n" comes before Instinct's bare "### Response:").
PROMPT_MARK = {
    "sweep": "<|file_sep|>updated/",
    "zeta": "### Response:\n",
    "zeta2": "<[fim-middle]>",
    "instinct": "### Response:",
    "generic": "NO_EDIT",
}


def family_answer(family: str, region: Region, new: str | None) -> str:
    text = region.text if new is None else new
    if family == "sweep":  # the updated block (the same block = no edit), then the next file separator
        return text + "\n<|file_sep|>"
    if family == "zeta":  # Zeta echoes the excerpt down to the region, cursor marker included
        head = "\n".join(p for p in (f"```{region.path}", region.before) if p)
        return f"{head}\n{REGION_START}\n{ZETA_CURSOR}{text}\n{REGION_END}\n```"
    if family == "zeta2":
        return ("NO_EDITS" if new is None else text) + "\n>>>>>>> UPDATED\n"
    if family == "instinct":
        return text + "<|im_end|>"
    return "NO_EDIT" if new is None else f"```{region.language_id}\n{text}\n```"


def chunked(answer: str, size: int = 4) -> list[str]:
    return [answer[i : i + size] for i in range(0, len(answer), size)]


def replay(family: str, region: Region, new: str | None, **reply: object) -> Reply:
    return Reply(chunks=chunked(family_answer(family, region, new)), **reply)  # type: ignore[arg-type]


def replaying(region: Region, new: str | None) -> Callable[[dict[str, Any]], Reply]:
    """A fake engine ``default`` that answers every family's prompt with that family's answer."""
    return canned([(mark, replay(name, region, new)) for name, mark in PROMPT_MARK.items()], Reply(chunks=["?"]))
