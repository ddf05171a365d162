"""One next-edit round over real stdio, shared by tests/e2e/test_next_edit_asking.py and
test_next_edit_replay.py: the user adds a parameter to ``def scale(items)`` (not a rename:
propagation has nothing, so the model is asked), and the fake engine answers in the family's
shape with the next edit that uses it (``* 2`` becomes ``* rate``)."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from vllm_companion.nextedit.types import Region

from .fake_backend import FakeBackend
from .lsp_session import as_dict, open_doc, session, type_text
from .nextedit_replay import replaying

INLINE_EDIT = "textDocument/copilotInlineEdit"


def scale_doc(t_value: str) -> str:
    """The document typed into; ``t_value`` is what ``t`` repeats (an astral character moves the
    next edit's UTF-16 column away from its code point one)."""
    return f'def scale(items):\n    t = "{t_value}" * 2\n    return [t for _ in items]'


async def edits_after_typing(
    backend: FakeBackend, init: dict[str, object], doc: str,
) -> tuple[list[dict[str, object]], int, str]:
    """The edits offered after typing ", rate" into the signature, the version typed to, the uri."""
    after = doc.replace("(items)", "(items, rate)")
    region = Region("file:///work/scale.py", "scale.py", "python", 0, 3, after, 0, 21)
    backend.default = replaying(region, after.replace("* 2", "* rate"))
    async with session(init) as client:
        uri, _ = open_doc(client, doc, name="scale.py")
        pos, version = types.Position(line=0, character=15), 1
        for ch in ", rate":
            version += 1
            pos = type_text(client, uri, version, pos, ch)
        params = {"textDocument": {"uri": uri, "version": version}, "position": {"line": 0, "character": 21}}
        result = as_dict(await asyncio.wait_for(client.protocol.send_request_async(INLINE_EDIT, params), 20))
    return result["edits"], version, uri
