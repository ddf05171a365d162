"""Partial accepts seen in the edit VS Code makes (issue 23, point 8), over real stdio: VS Code's
stable API reports none, so the server takes a didChange that inserts a word or line of the
suggestion it just showed as one, with the kind Copilot's notification records (``partial``). A
full accept is counted once, as an accept; typing the suggestion's first letters is no accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.e2e.test_telemetry import ACCEPT, item_json, stats, telemetry_session
from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline_params, open_doc, type_text


async def shown(client: Any, uri: str, pos: types.Position) -> types.InlineCompletionItem:
    result = await client.text_document_inline_completion_async(inline_params(uri, pos))
    assert isinstance(result, types.InlineCompletionList)
    (item,) = result.items
    client.protocol.notify("textDocument/didShowCompletion", {"item": item_json(item)})
    return item


def counts(state: Path) -> tuple[int, int, int, int]:
    python = stats(state)["language"].get("python", {})
    return python.get("shown", 0), python.get("partial", 0), python.get("accepted", 0), python.get("dismissed", 0)


async def test_inserting_the_first_word_of_a_shown_suggestion_is_a_partial_accept(
        backend: FakeBackend, tmp_path: Path) -> None:
    backend.default = Reply(chunks=["value + offset"])
    state = tmp_path / "state"
    async with telemetry_session(backend, state, prefetch=False) as client:
        uri, pos = open_doc(client, "y = █\n")
        await shown(client, uri, pos)
        type_text(client, uri, 2, pos, "value")  # VS Code's "Accept Word"
        await client.text_document_inline_completion_async(inline_params(uri, pos))  # a round trip
    assert counts(state) == (1, 1, 0, 0)


async def test_accepting_a_line_of_a_multi_line_suggestion_is_a_partial_accept(
        backend: FakeBackend, tmp_path: Path) -> None:
    backend.default = Reply(chunks=["y = x * 2\n    return y"])
    state = tmp_path / "state"
    async with telemetry_session(backend, state, prefetch=False) as client:
        uri, pos = open_doc(client, "def f(x):\n    █\n")
        item = await shown(client, uri, pos)
        assert isinstance(item.insert_text, str) and "\n" in item.insert_text
        line = item.insert_text[: item.insert_text.index("\n") + 1]  # VS Code's "Accept Line"
        change = types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=line)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2), content_changes=[change]))
        await client.text_document_inline_completion_async(inline_params(uri, pos))
    assert counts(state)[1] == 1


async def test_a_full_accept_is_not_also_a_partial_one(backend: FakeBackend, tmp_path: Path) -> None:
    backend.default = Reply(chunks=["value + offset"])
    state = tmp_path / "state"
    async with telemetry_session(backend, state, prefetch=False) as client:
        uri, pos = open_doc(client, "y = █\n")
        item = await shown(client, uri, pos)
        type_text(client, uri, 2, pos, "value + offset")  # VS Code inserts it all, then runs the command
        assert item.command is not None
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=ACCEPT, arguments=item.command.arguments))
    assert counts(state) == (1, 0, 1, 0)


async def test_typing_the_suggestions_first_letters_is_not_an_accept(backend: FakeBackend, tmp_path: Path) -> None:
    backend.default = Reply(chunks=["value + offset"])
    state = tmp_path / "state"
    async with telemetry_session(backend, state, prefetch=False) as client:
        uri, pos = open_doc(client, "y = █\n")
        await shown(client, uri, pos)
        cursor = pos
        for version, key in enumerate("value", start=2):  # keystrokes, one character each
            cursor = type_text(client, uri, version, cursor, key)
        type_text(client, uri, 7, pos, "val")  # mid-word: no whole word
        await client.text_document_inline_completion_async(inline_params(uri, cursor))
    assert counts(state)[1] == 0
