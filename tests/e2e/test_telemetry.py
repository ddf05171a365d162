"""Acceptance telemetry over stdio: the item's accept command, Copilot's show and partial-accept
notifications, survival, the local store read back by ``vllm-companion stats``; the prefetch
after an accept; malformed telemetry never hurts the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, inline_params, open_doc, options, session, type_text, wait_for

ACCEPT = "vllmCompanion.didAcceptCompletion"


def stats(state: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "vllm_companion", "stats", "--json"], capture_output=True, text=True,
                         env={**os.environ, "VLLM_COMPANION_STATE": str(state)}, timeout=30, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def telemetry_session(backend: FakeBackend, state: Path, **completion: Any) -> Any:
    """A server whose acceptance store is ``state`` (read back with ``stats``)."""
    return session(options(backend.url, **completion), env={"VLLM_COMPANION_STATE": str(state)})


def item_json(item: types.InlineCompletionItem) -> dict[str, Any]:
    assert item.command is not None
    return {"insertText": item.insert_text, "command": {"title": item.command.title, "command": item.command.command,
                                                        "arguments": item.command.arguments}}


async def test_show_accept_survive_and_stats(backend: FakeBackend, tmp_path: Path) -> None:
    backend.script = [Reply(chunks=["compute(1)"]), Reply(chunks=[" + 2"])]
    state = tmp_path / "state"
    async with telemetry_session(backend, state, survivalChecksS=[0.3, 0.6]) as client:
        uri, pos = open_doc(client, "x = █\n")
        result = await client.text_document_inline_completion_async(inline_params(uri, pos))
        assert isinstance(result, types.InlineCompletionList)
        (item,) = result.items
        assert item.command is not None and item.command.command == ACCEPT and item.command.arguments
        client.protocol.notify("textDocument/didShowCompletion", {"item": item_json(item)})
        end = type_text(client, uri, 2, pos, "compute(1)")  # the editor inserts it...
        await client.workspace_execute_command_async(  # ...then runs the item's command
            types.ExecuteCommandParams(command=ACCEPT, arguments=item.command.arguments))
        # The prefetch: the suggestion at the new cursor is asked for before the editor asks.
        await wait_for(lambda: len(backend.generation_requests()) == 2)
        assert "x = compute(1)<|fim_suffix|>" in backend.generation_requests()[1].body["prompt"]
        await asyncio.sleep(0.1)
        assert await inline(client, uri, end) == " + 2"
        assert len(backend.generation_requests()) == 2  # served from the prefetched cache entry
        await asyncio.sleep(0.8)  # both survival checks
    python = stats(state)["language"]["python"]
    assert python["shown"] >= 1 and python["accepted"] == 1 and python["rate"] is not None
    assert python["survived30"] == 1.0 and python["survived120"] == 1.0


async def test_partial_accept_and_dismissal_are_recorded(backend: FakeBackend, tmp_path: Path) -> None:
    backend.default = Reply(chunks=["value + 1"])
    state = tmp_path / "state"
    async with telemetry_session(backend, state, prefetch=False) as client:
        uri, pos = open_doc(client, "y = █\n")
        first = await client.text_document_inline_completion_async(inline_params(uri, pos))
        second = await client.text_document_inline_completion_async(inline_params(uri, pos))
        assert isinstance(first, types.InlineCompletionList) and isinstance(second, types.InlineCompletionList)
        client.protocol.notify("textDocument/didShowCompletion", {"item": item_json(first.items[0])})
        client.protocol.notify("textDocument/didShowCompletion", {"item": item_json(second.items[0])})
        client.protocol.notify("textDocument/didPartiallyAcceptCompletion",
                               {"item": item_json(second.items[0]), "acceptedLength": 5})
        # Malformed telemetry is ignored, and the server goes on answering.
        client.protocol.notify("textDocument/didShowCompletion", {"item": {"command": {"arguments": [{"x": 1}]}}})
        client.protocol.notify("textDocument/didPartiallyAcceptCompletion", {"item": None, "acceptedLength": "5"})
        await client.workspace_execute_command_async(types.ExecuteCommandParams(command=ACCEPT, arguments=[42]))
        assert await inline(client, uri, pos) == "value + 1"
    python = stats(state)["language"]["python"]
    assert (python["shown"], python["dismissed"], python["partial"], python["accepted"]) == (2, 1, 1, 0)


async def test_telemetry_off_stores_nothing(backend: FakeBackend, tmp_path: Path) -> None:
    backend.default = Reply(chunks=["1"])
    state = tmp_path / "state"
    async with telemetry_session(backend, state, telemetry=False) as client:
        uri, pos = open_doc(client, "z = █\n")
        result = await client.text_document_inline_completion_async(inline_params(uri, pos))
        assert isinstance(result, types.InlineCompletionList) and result.items[0].command is not None
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=ACCEPT, arguments=result.items[0].command.arguments))
    assert stats(state)["language"] == {}


async def test_two_servers_sharing_one_store_both_record_their_accepts(backend: FakeBackend, tmp_path: Path) -> None:
    """Two editor windows: two language servers, one store (the user's state folder). The second
    server closed the descriptor its store was checked through once SQLite had opened the file,
    which dropped SQLite's own locks on it (POSIX locks belong to the process: any close drops
    them). When the first server exited it saw no other user, checkpointed and deleted the
    ``-wal``, and the second went on writing into its deleted copy, which ``stats`` never read."""
    backend.default = Reply(chunks=["compute(1)"])
    state = tmp_path / "state"

    async def accept_one(client: Any, text: str, total: int) -> None:
        uri, pos = open_doc(client, text)
        result = await client.text_document_inline_completion_async(inline_params(uri, pos))
        assert isinstance(result, types.InlineCompletionList) and result.items[0].command is not None
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=ACCEPT, arguments=result.items[0].command.arguments))
        for _ in range(50):  # the writer thread stores it soon after
            if (await asyncio.to_thread(stats, state))["language"].get("python", {}).get("accepted") == total:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"stats never counted {total} accepts")

    async with contextlib.AsyncExitStack() as first_window:
        first = await first_window.enter_async_context(telemetry_session(backend, state))
        await accept_one(first, "a = █\n", 1)
        async with telemetry_session(backend, state) as second:
            await accept_one(second, "b = █\n", 2)
            await first_window.aclose()  # the first window closes, the second goes on
            await accept_one(second, "c = █\n", 3)
