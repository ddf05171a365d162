"""The loop guard end to end: an engine that loops forever is stopped at once, and learns."""

from __future__ import annotations

import asyncio
import time

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session, wait_for
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


async def test_repeated_loops_raise_penalties_and_show_in_status(backend: FakeBackend) -> None:
    backend.default = lambda body: Reply(chunks=["a = 1\n"], loop="b = compute(a)\n")
    async with session(options(backend.url, maxTokens=4096, cacheSize=0)) as client:
        uri, _ = open_doc(client, "def f():\n    █\n" + "\n" * 10)
        for line in range(THRESHOLD + 1):
            await inline(client, uri, pos_at(line + 2))
        await wait_for(lambda: any(_get(s, "loopEvents") for s in client.statuses))
    bodies = [r.body for r in backend.generation_requests()]
    assert "repetition_penalty" not in bodies[0]
    assert bodies[-1]["repetition_penalty"] > 1.1
    assert bodies[-1]["frequency_penalty"] > 0


def pos_at(line: int):  # type: ignore[no-untyped-def]
    from lsprotocol import types

    return types.Position(line=line, character=0)


def _get(status: object, key: str) -> object:
    return status.get(key) if isinstance(status, dict) else getattr(status, key, None)
