"""A code action's command carries the document version it was offered on, over real stdio
(actions.py ``arguments``: ``[uri, range, instruction, version]``): run after the user typed, it
refuses with nothing done (no model asked, no edit sent) instead of rewriting or quoting the lines
that moved into its range; run on the version it names, it does its work as before.
"""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, client_capabilities_for, open_doc, options, raw_request, session

TEXT = "x = 1\ny = 2\nprint(x)\n█"
SELECTED = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 5}}


def prompting_client() -> types.ClientCapabilities:
    caps = client_capabilities_for("visual-studio-code")
    caps.experimental = {"vllmCompanion": {"prompts": True}}  # applies edits (no previewEdits)
    return caps


def record_apply_edits(client: Any) -> list[Any]:
    applied: list[Any] = []
    client.feature(types.WORKSPACE_APPLY_EDIT)(lambda p: applied.append(p) or types.ApplyWorkspaceEditResult(True))
    return applied


async def offered(client: Any, uri: str) -> dict[str, list[Any]]:
    """Each offered action's command arguments, by command."""
    params = {"textDocument": {"uri": uri}, "range": SELECTED, "context": {"diagnostics": []}}
    actions = as_dict(await raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, params))
    return {a["command"]["command"]: list(a["command"]["arguments"]) for a in actions}


def insert_line_above(client: Any, uri: str, version: int) -> None:
    """The user types a line at the top: the offered range now covers other text."""
    at = types.Position(line=0, character=0)
    change = types.TextDocumentContentChangePartial(range=types.Range(start=at, end=at), text="import os\n")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version), content_changes=[change]))


async def execute(client: Any, command: str, arguments: list[Any]) -> Any:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command,
                                                                                   arguments=arguments))


@pytest.mark.parametrize("command", ["vllmCompanion.fix", "vllmCompanion.explain"])
async def test_a_command_run_after_the_user_typed_does_nothing_and_says_so(backend: FakeBackend,
                                                                          command: str) -> None:
    backend.default = Reply(chunks=["```python\nx = 10\ny = 20\n```"])
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, TEXT)
        arguments = (await offered(client, uri))[command]
        assert arguments[3] == 1  # the version the range was computed on
        insert_line_above(client, uri, 2)
        with pytest.raises(Exception, match="changed since the action was offered") as refused:
            await execute(client, command, arguments)
        assert "version 1, now 2" in str(refused.value)
    assert applied == []  # no edit over "import os" / "x = 1"
    assert backend.generation_requests() == []  # nor the moved lines sent to the model


async def test_a_command_offered_after_the_edit_rewrites_the_text_it_was_offered_on(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["```python\nx = 10\ny = 20\n```"])
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, TEXT)
        insert_line_above(client, uri, 2)
        arguments = (await offered(client, uri))["vllmCompanion.fix"]
        assert arguments[3] == 2
        result = as_dict(await execute(client, "vllmCompanion.fix", arguments))
    assert result["applied"] is True
    (params,) = applied
    (change,) = params.edit.document_changes
    assert change.text_document.version == 2
    assert change.edits[0].range == types.Range(start=types.Position(0, 0), end=types.Position(1, 5))
    assert "```python\nimport os\nx = 1\n```" in backend.generation_requests()[0].body["messages"][-1]["content"]


async def test_the_instruction_a_client_asked_for_goes_third_and_the_version_stays_checked(
        backend: FakeBackend) -> None:
    """What the VS Code extension and the Neovim plugin send for "Edit with instruction…": the
    code action's arguments with the user's instruction in the third place."""
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, TEXT)
        uri_, rng, _, version, opened = (await offered(client, uri))["vllmCompanion.editWithInstruction"]
        insert_line_above(client, uri, 2)
        with pytest.raises(Exception, match="changed since the action was offered"):
            await execute(client, "vllmCompanion.editWithInstruction", [uri_, rng, "rename x", version, opened])
    assert applied == [] and backend.generation_requests() == []


@pytest.mark.parametrize("version", ["1", 1.5, True, {"v": 1}])
async def test_a_version_that_is_not_an_integer_is_invalid_params(backend: FakeBackend, version: Any) -> None:
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        uri, _ = open_doc(client, TEXT)
        with pytest.raises(Exception, match="document version"):
            await execute(client, "vllmCompanion.fix", [uri, SELECTED, None, version])
    assert backend.generation_requests() == []
