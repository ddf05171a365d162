"""An engine's stream after ``[DONE]``: the server reads on after it, for the body's end, so the
connection goes back to the pool (backend/client.py ``_drain``; issue 21, docs/performance.md).
An engine that then never ends its body, or trickles bytes for ever, must cost at most
``DRAIN_S``, never a completion's answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend, Seen, _chunk, _delta, _sse
from tests.lsp_session import inline, open_doc, options, session

CAP_MS = 3000


class TailingEngine(FakeBackend):
    """Streams "x", the finish event and ``[DONE]``, then (``tail``) hangs with the body open, or
    trickles comment lines for ever."""

    tail = "hang"

    async def _generate(self, seen: Seen, reader: Any, writer: Any) -> bool:
        if not seen.body.get("stream") or seen.path.endswith("chat/completions"):
            return await super()._generate(seen, reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(_chunk(_sse(_delta("x", False))) + _chunk(_sse(_delta("", False, "stop")) + b"data: [DONE]\n\n"))
        await writer.drain()
        seen.ended = time.monotonic()
        try:
            while self.tail == "trickle":
                writer.write(_chunk(b": still here\n" * 64))
                await writer.drain()
                await asyncio.sleep(0.001)
            await asyncio.sleep(3600)
        except ConnectionError:
            seen.client_closed = True
        return False


async def answers_while(tail: str) -> list[float]:
    engine = TailingEngine()
    engine.tail = tail
    await engine.start()
    took = []
    try:
        async with session(options(engine.url, cacheSize=0, timeoutMs=CAP_MS)) as client:
            uri, _ = open_doc(client, "".join(f"value_{i} = {i}\n" for i in range(100)) + "█")
            for row in (10, 40, 70):
                t0 = time.perf_counter()
                assert await inline(client, uri, types.Position(line=row, character=0)) == "x"
                took.append(time.perf_counter() - t0)
    finally:
        await engine.stop()
    return took


async def test_engine_that_never_ends_its_body_after_done_costs_no_answer() -> None:
    """[DONE], then the body left open: each completion is answered with its text within the
    drain's bound (not at the cap, the total timeout, or never)."""
    took = await answers_while("hang")
    assert max(took) < 1.0, took


async def test_engine_that_trickles_bytes_after_done_for_ever_costs_no_answer() -> None:
    """[DONE], then comment lines every millisecond without end: answered as promptly."""
    took = await answers_while("trickle")
    assert max(took) < 1.0, took
