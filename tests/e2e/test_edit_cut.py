"""An edit whose answer was cut by the token cap ("length": ``chat.maxTokens``, or a team
server's ``engine.teamMaxTokens`` clamp) is never applied nor offered as a replacement: the
rewrite would replace the whole selection with the first half of the code. The client gets
RequestFailed saying why; the partial text only ever reached it as the streamed deltas.
Over real stdio, against the fake engine answering ``finish_reason: "length"``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, capture_partials, client_capabilities_for, open_doc, options, session

SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
LINES = {"start": {"line": 0, "character": 0}, "end": {"line": 5, "character": 0}}
HALF = ["```python\n", "def f(xs):\n", "    return sum(\n"]  # the cap hit mid-rewrite
CUT = r"the model's answer was cut at 3 tokens; nothing was changed: raise chat\.maxTokens or select less"


def caps(**ours: bool) -> types.ClientCapabilities:
    out = client_capabilities_for("visual-studio-code")
    out.experimental = {"vllmCompanion": {"prompts": True, **ours}}
    return out


def record_apply_edits(client: Any) -> list[Any]:
    applied: list[Any] = []
    client.feature(types.WORKSPACE_APPLY_EDIT)(lambda p: applied.append(p) or types.ApplyWorkspaceEditResult(True))
    return applied


async def test_a_cut_edit_asked_to_apply_is_refused_and_never_applied(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=HALF, finish_reason="length")]
    async with session(options(backend.url)) as client:
        applied = record_apply_edits(client)
        partials = capture_partials(client)
        uri, _ = open_doc(client, SOURCE)
        params = {"textDocument": {"uri": uri}, "range": LINES, "instruction": "use sum()", "apply": True,
                  "partialResultToken": "e1"}
        with pytest.raises(Exception, match=CUT):
            await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/edit", params), 10)
    assert applied == []
    assert "".join(partials["e1"]) == "".join(HALF)  # the partial text: shown as it streamed, no more


async def test_a_cut_edit_not_asked_to_apply_returns_no_edit(backend: FakeBackend) -> None:
    """A client that applies the returned edit itself (Neovim's diff) gets no edit to apply."""
    backend.script = [Reply(chunks=HALF, finish_reason="length")]
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, SOURCE)
        params = {"textDocument": {"uri": uri}, "range": LINES, "instruction": "use sum()"}
        with pytest.raises(Exception, match=CUT):
            await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/edit", params), 10)


@pytest.mark.parametrize("previews", [True, False])
async def test_a_cut_fix_command_is_neither_applied_nor_offered_as_a_preview(backend: FakeBackend,
                                                                            previews: bool) -> None:
    backend.default = Reply(chunks=HALF, finish_reason="length")
    async with session(options(backend.url), capabilities=caps(previewEdits=previews)) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, SOURCE)
        command = types.ExecuteCommandParams(command="vllmCompanion.fix", arguments=[uri, LINES])
        with pytest.raises(Exception, match=CUT):
            await asyncio.wait_for(client.workspace_execute_command_async(command), 10)
    assert applied == []


async def test_a_whole_edit_is_still_applied(backend: FakeBackend) -> None:
    """The guard is on the cut, not on edits: the same request, answered whole, is applied."""
    backend.script = [Reply(chunks=[*HALF, "xs)\n```"])]
    async with session(options(backend.url)) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, SOURCE)
        params = {"textDocument": {"uri": uri}, "range": LINES, "instruction": "use sum()", "apply": True}
        result = as_dict(await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/edit", params), 10))
    assert result["applied"] is True and result["finishReason"] == "stop"
    (params_seen,) = applied
    assert params_seen.edit.document_changes[0].edits[0].new_text == "def f(xs):\n    return sum(\nxs)\n"
