"""Attacks on warming on open (completion/warm.py): an editor (or a plugin) that floods didOpen and
didFocus must not flood the engine; a warm-up must never delay or break a real completion; a
workspace may switch warming off, never on."""

from __future__ import annotations

import asyncio
import time

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session, split_cursor, wait_for
from vllm_companion.completion.warm import SETTLE_S
from vllm_companion.config import Config
from vllm_companion.settings_trust import from_workspace

CODE = "def area(r):\n    return 3.14 * r * r\n\n\ndef name():\n    return █\n"


async def test_a_flood_of_opens_and_focuses_sends_one_warm_up(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        text, _ = split_cursor(CODE)
        uris = [f"file:///work/flood{i}.py" for i in range(300)]
        for i, uri in enumerate(uris):
            client.text_document_did_open(types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text + f"n = {i}\n")))
            client.protocol.notify("textDocument/didFocus", {"textDocument": {"uri": uris[i // 2]}})
        client.protocol.notify("textDocument/didFocus", {"textDocument": {"uri": uris[-1]}})
        await wait_for(lambda: len(backend.warms) == 1)
        await asyncio.sleep(SETTLE_S + 0.7)
    assert len(backend.warms) == 1 and backend.requests == []
    assert "n = 299" in backend.warms[0].body["prompt"]  # the document focused last


async def test_a_malformed_focus_is_ignored(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        for params in ({}, {"textDocument": None}, {"textDocument": {"uri": 5}}, {"textDocument": {"uri": "x" * 20000}},
                       {"textDocument": {"uri": "file:///work/never-opened.py"}}, [1, 2]):
            client.protocol.notify("textDocument/didFocus", params)
        uri, pos = open_doc(client, CODE)
        assert await inline(client, uri, pos) == "pass"  # the server still answers
    assert len(backend.requests) == 1


async def test_a_slow_warm_up_never_delays_a_real_completion(backend: FakeBackend) -> None:
    """The warm-up trickles (a cold CPU prefill): a completion is answered at once, and the warm-up's
    stream is closed so the engine stops working on it."""
    backend.warm_reply = Reply(chunks=["x"] * 10, delay_s=2.0)
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, CODE)
        await wait_for(lambda: backend.warms and backend.warms[0].chunks_sent >= 1)
        began = time.monotonic()
        assert await inline(client, uri, pos) == "pass"
        took = time.monotonic() - began
        await wait_for(lambda: backend.warms[0].ended is not None, timeout=3)
    assert took < 1.0, took
    assert backend.warms[0].client_closed and backend.warms[0].chunks_sent < 3


async def test_a_failing_warm_up_does_not_mark_the_endpoint_down(backend: FakeBackend) -> None:
    backend.warm_reply = Reply(status=503, headers={"Retry-After": "60"})
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, CODE)
        await wait_for(lambda: backend.warms and backend.warms[0].ended is not None)
        await asyncio.sleep(0.2)
        assert await inline(client, uri, pos) == "pass"  # a reported 503 + Retry-After would answer null


async def test_no_warm_up_while_the_endpoint_asks_to_wait(backend: FakeBackend) -> None:
    backend.script = [Reply(status=503, headers={"Retry-After": "60"})]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, CODE)
        assert await inline(client, uri, pos) is None  # the endpoint said: wait a minute
        open_doc(client, CODE)
        await asyncio.sleep(SETTLE_S + 0.7)
    assert backend.warms == []


def test_a_workspace_may_switch_warming_off_but_never_on() -> None:
    off = Config.model_validate({"completion": {"warmOnOpen": False}})
    on = Config()
    assert from_workspace({"completion": {"warmOnOpen": True}}, off)[0]["completion"].get("warmOnOpen") is not True
    assert from_workspace({"completion": {"warmOnOpen": False}}, on)[0]["completion"]["warmOnOpen"] is False
