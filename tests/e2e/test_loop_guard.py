"""The loop guard end to end: an engine that loops forever is stopped at once, and learns."""

from __future__ import annotations

import asyncio
import time

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import capture_partials, chat_request, inline, open_doc, options, session, wait_for
from vllm_companion.repetition import THRESHOLD


async def test_endless_line_loop_is_cut_and_the_engine_stream_closed(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["total = 0\n"], loop="    total += price(item)\n", delay_s=0.002)]
    async with session(options(backend.url, maxTokens=4096, maxLines=500)) as client:
        uri, pos = open_doc(client, "def f(items):\n    █\n")
        t0 = time.monotonic()
        text = await asyncio.wait_for(inline(client, uri, pos), 5)
        assert time.monotonic() - t0 < 2
    assert text == "total = 0\n    total += price(item)"
    seen = backend.requests[-1]
    assert seen.client_closed
    assert seen.chunks_sent < 10


async def test_inline_token_loop_is_cut(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["foo("], loop="foo(", delay_s=0.001)]
    async with session(options(backend.url, maxTokens=4096)) as client:
        uri, pos = open_doc(client, "x = 1\ny = █\n")
        assert await asyncio.wait_for(inline(client, uri, pos), 5) is None
    assert backend.requests[-1].client_closed
    assert backend.requests[-1].chunks_sent < 40


async def test_repeated_loops_show_in_status_and_raise_penalties_for_chat_only(backend: FakeBackend) -> None:
    """Loops are counted and shown; a later chat answer gets raised penalties, completions never
    (code repeats identifiers on purpose: docs/performance.md, quality benchmark)."""
    backend.default = lambda body: Reply(chunks=["a = 1\n"], loop="b = compute(a)\n")
    async with session(options(backend.url, maxTokens=4096, cacheSize=0)) as client:
        uri, _ = open_doc(client, "def f():\n    █\n" + "\n" * 10)
        for line in range(THRESHOLD + 1):
            await inline(client, uri, pos_at(line + 2))
        await wait_for(lambda: any(_get(s, "loopEvents") for s in client.statuses))
        capture_partials(client)
        await chat_request(client, {"messages": [{"role": "user", "content": "hi"}], "maxTokens": 32})
    completions = [r.body for r in backend.generation_requests() if "messages" not in r.body]
    chat = [r.body for r in backend.generation_requests() if "messages" in r.body]
    assert len(completions) == THRESHOLD + 1
    assert all("repetition_penalty" not in b and "frequency_penalty" not in b for b in completions)
    assert chat[-1]["repetition_penalty"] > 1.0 and chat[-1]["frequency_penalty"] > 0


def pos_at(line: int):  # type: ignore[no-untyped-def]
    from lsprotocol import types

    return types.Position(line=line, character=0)


def _get(status: object, key: str) -> object:
    return status.get(key) if isinstance(status, dict) else getattr(status, key, None)
