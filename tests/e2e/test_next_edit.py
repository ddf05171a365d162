"""Next-edit suggestions over real stdio, in the Copilot language server's shapes: a renamed
parameter is offered at its next use (UTF-16 range, the request's version), shown and accepted
through executeCommand (telemetry rows written, kind next_edit); a stale version, a secret file
and bad params get nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend
from tests.lsp_session import as_dict, open_doc, options, session, type_text
from vllm_companion.telemetry.store import EventStore

INLINE_EDIT, ACCEPT = "textDocument/copilotInlineEdit", "vllmCompanion.acceptInlineEdit"


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def ask(client: Any, uri: str, version: int, line: int, character: int) -> dict[str, Any]:
    params = {"textDocument": {"uri": uri, "version": version}, "position": {"line": line, "character": character}}
    result = await asyncio.wait_for(client.protocol.send_request_async(INLINE_EDIT, params), 10)
    return as_dict(result)  # type: ignore[no-any-return]


def rename(client: Any, uri: str, row: int, col: int, old: str, new: str) -> int:
    """Delete ``old`` at (row, col) and type ``new`` a key at a time; returns the last version."""
    start = types.Position(line=row, character=col)
    end = types.Position(line=row, character=col + utf16(old))
    change = types.TextDocumentContentChangePartial(range=types.Range(start=start, end=end), text="")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2), content_changes=[change]))
    version, pos = 2, start
    for ch in new:
        version += 1
        pos = type_text(client, uri, version, pos, ch)
    return version


async def test_rename_offered_at_next_use_shown_and_accepted(backend: FakeBackend, tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with session(options(backend.url), env={"VLLM_COMPANION_STATE": str(state)}) as client:
        caps = as_dict(client.init_result.capabilities.experimental)  # type: ignore[attr-defined]
        assert caps["vllmCompanion"]["nextEdit"]["method"] == INLINE_EDIT
        use = "    return '😀' + "
        uri, _ = open_doc(client, "def f(count):\n" + use + "count\n")
        version = rename(client, uri, 0, 6, "count", "total")
        result = await ask(client, uri, version, 0, 11)
        (edit,) = result["edits"]
        col = utf16(use)  # the astral character is two UTF-16 units
        assert edit["range"] == {"start": {"line": 1, "character": col}, "end": {"line": 1, "character": col + 5}}
        assert edit["text"] == "total" and edit["textDocument"] == {"uri": uri, "version": version}
        command = edit["command"]
        assert command["command"] == ACCEPT and len(command["arguments"]) == 1
        client.protocol.notify("textDocument/didShowInlineEdit", {"item": {"command": command}})
        client.protocol.notify("textDocument/didFocus", {"textDocument": {"uri": uri}})
        rng = types.Range(start=types.Position(line=1, character=col), end=types.Position(line=1, character=col + 5))
        client.text_document_did_change(types.DidChangeTextDocumentParams(  # the editor applies the edit...
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version + 1),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text="total")]))
        await client.workspace_execute_command_async(  # ...then runs its command
            types.ExecuteCommandParams(command=ACCEPT, arguments=command["arguments"]))
        assert (await ask(client, uri, version + 1, 1, col + 5))["edits"] == []  # nothing left to rename
    events = [(e.event, e.kind, e.model) for e in EventStore(state / "telemetry.sqlite3").events()]
    assert events == [("shown", "next_edit", "propagation"), ("accepted", "next_edit", "propagation")]


async def test_stale_version_gets_no_edits(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "def f(count):\n    return count\n")
        version = rename(client, uri, 0, 6, "count", "total")
        assert (await ask(client, uri, version - 1, 0, 11))["edits"] == []
        assert (await ask(client, uri, version + 5, 0, 11))["edits"] == []
        assert len((await ask(client, uri, version, 0, 11))["edits"]) == 1


async def test_a_secret_file_gets_nothing(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "count=1\nB=count\n", language="dotenv", name=".env")
        version = rename(client, uri, 0, 0, "count", "total")
        assert (await ask(client, uri, version, 0, 5))["edits"] == []


async def test_version_is_required_and_params_are_checked(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "x = 1\n")
        for params in ({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}},
                       {"textDocument": {"uri": uri, "version": "1"}, "position": {"line": 0, "character": 0}},
                       {"textDocument": {"uri": uri, "version": 1}, "position": {"line": -1, "character": 0}},
                       {"textDocument": {"uri": uri, "version": 1}}):
            with pytest.raises(Exception, match=r"nvalid params|-32602"):
                await asyncio.wait_for(client.protocol.send_request_async(INLINE_EDIT, params), 10)
