"""Edits show a diff before they land (issue 23, item 7): a client that declares
``experimental.vllmCompanion.previewEdits`` gets Fix / Edit-with-instruction back unapplied (no
``workspace/applyEdit``), marked ``"preview": true``, with the versioned edit it applies itself if
the user accepts; a client without it gets the edit applied by the server, as before.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, client_capabilities_for, open_doc, options, session

RANGE = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 5}}


def client_caps(**ours: bool) -> types.ClientCapabilities:
    caps = client_capabilities_for("visual-studio-code")
    caps.experimental = {"vllmCompanion": {"prompts": True, **ours}}
    return caps


def record_apply_edits(client: Any) -> list[Any]:
    """The client's ``workspace/applyEdit`` requests, each answered "applied"."""
    applied: list[Any] = []

    def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    client.feature(types.WORKSPACE_APPLY_EDIT)(apply)
    return applied


async def run_fix(backend: FakeBackend, caps: types.ClientCapabilities) -> tuple[dict[str, Any], list[Any]]:
    """Fix on the first two lines of an open document; the result and the applyEdits seen."""
    backend.default = Reply(chunks=["```python\nx = 10\ny = 20\n```"])
    async with session(options(backend.url), capabilities=caps) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, "x = 1\ny = 2\nprint(x)\n█")
        result = as_dict(await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="vllmCompanion.fix", arguments=[uri, RANGE])))
        result["uri"] = uri
    return result, applied


async def test_previewing_client_gets_the_fix_back_and_no_apply_edit(backend: FakeBackend) -> None:
    result, applied = await run_fix(backend, client_caps(previewEdits=True))
    assert applied == []
    assert result["preview"] is True and result["applied"] is False
    (change,) = result["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": result["uri"], "version": 1}  # versioned: safe to apply later
    (text_edit,) = change["edits"]
    assert text_edit["newText"] == "x = 10\ny = 20"
    assert text_edit["range"] == RANGE


async def test_previewing_client_gets_edit_with_instruction_back_unapplied(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["x = 3"])
    async with session(options(backend.url), capabilities=client_caps(previewEdits=True)) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, "x = 1\n█")
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}
        result = as_dict(await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="vllmCompanion.editWithInstruction", arguments=[uri, rng, "make it three"])))
    assert applied == [] and result["preview"] is True
    assert result["edit"]["documentChanges"][0]["edits"][0]["newText"] == "x = 3"


async def test_client_without_the_capability_still_gets_the_edit_applied(backend: FakeBackend) -> None:
    """As before this change (a regression guard): and only ``true`` counts as declaring it."""
    for caps in (client_caps(), client_caps(previewEdits="yes")):  # type: ignore[arg-type]
        result, applied = await run_fix(backend, caps)
        assert result["applied"] is True and "preview" not in result
        (params,) = applied
        assert params.edit.document_changes[0].edits[0].new_text == "x = 10\ny = 20"
