"""The server's added time per completion, end to end (issue 21; scripts/bench_overhead.py
measures it, docs/performance.md records it): what keeps it small, over real stdio and a real
socket."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session


async def counting_backend() -> tuple[FakeBackend, list[int]]:
    """A fake engine that counts the TCP connections made to it."""
    fake = FakeBackend()
    opened: list[int] = []
    handle = fake._handle

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        opened.append(1)
        return await handle(reader, writer)

    fake._handle = counted  # type: ignore[method-assign]
    return await fake.start(), opened


async def test_finished_completions_reuse_one_connection_to_the_engine() -> None:
    """A stream read to its end leaves its connection in the pool: each completion opened a new
    one (the response was closed right after ``[DONE]``, before the body's terminator), 0.2-0.4 ms
    of the server's added time on the benchmark. A stream cut by a stage still closes its own
    (the engine aborts the request)."""
    backend, opened = await counting_backend()
    backend.default = Reply(chunks=["x"])
    try:
        async with session(options(backend.url, cacheSize=0)) as client:
            uri, _ = open_doc(client, "".join(f"value_{i} = {i}\n" for i in range(200)) + "█")
            assert await inline(client, uri, types.Position(line=1, character=0)) == "x"  # probes, first connection
            before = len(opened)
            for row in range(20, 200, 20):
                assert await inline(client, uri, types.Position(line=row, character=0)) == "x"
            assert len(opened) - before <= 1, len(opened) - before
            backend.default = Reply(chunks=["a\n", "b\n", "c\n", "d\n"], delay_s=0.05)
            await inline(client, uri, types.Position(line=5, character=0))
            # cut by a stage: that connection is closed, by the server while it still runs (not by
            # its exit). The fake engine sees the hang-up on its next write, 50 ms apart.
            for _ in range(100):
                if backend.requests[-1].client_closed:
                    break
                await asyncio.sleep(0.02)
            assert backend.requests[-1].client_closed
    finally:
        await backend.stop()
