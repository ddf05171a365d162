"""A stream's response is closed however its task ends (``backend/client.py``: ``_quiet_close``):
closing it is what makes vLLM abort the request. The close goes without ``asyncio.shield`` on
the common path (three passes of the event loop saved, docs/performance.md), so the cases where
the shield is still needed are the ones tested here, over a real socket (tests/fake_backend.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2 as httpx

from tests.fake_backend import FakeBackend, Reply
from vllm_companion.backend.client import _quiet_close


async def _open(backend: FakeBackend, http: Any) -> Any:
    """A streamed completion's response, its body unread (the engine is still sending)."""
    body = {"model": "m", "prompt": "x", "stream": True}
    response = await http.send(http.build_request("POST", backend.url + "/completions", json=body), stream=True)
    assert response.status_code == 200
    return response


async def _seen_closed(backend: FakeBackend) -> bool:
    for _ in range(200):
        if backend.generation_requests() and backend.generation_requests()[0].client_closed:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_close_cancelled_midway_still_closes_the_response() -> None:
    backend = await FakeBackend().start()
    backend.default = Reply(chunks=["a"], loop="b", delay_s=0.01)  # never ends by itself
    try:
        async with httpx.AsyncClient() as http:
            response = await _open(backend, http)
            closing = asyncio.ensure_future(_quiet_close(response))
            for _ in range(3):  # the close is under way, suspended in httpx's own steps
                await asyncio.sleep(0)
                closing.cancel()
            await asyncio.gather(closing, return_exceptions=True)
            await asyncio.sleep(0.05)
            assert response.is_closed
            assert await _seen_closed(backend)
    finally:
        await backend.stop()


async def test_a_cancelled_task_still_closes_its_response() -> None:
    backend = await FakeBackend().start()
    backend.default = Reply(chunks=["a"], loop="b", delay_s=0.01)
    try:
        async with httpx.AsyncClient() as http:
            response = await _open(backend, http)

            async def reader() -> None:
                try:
                    async for _ in response.aiter_bytes():
                        pass
                finally:
                    await _quiet_close(response)

            task = asyncio.ensure_future(reader())
            await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0.05)
            assert response.is_closed
            assert await _seen_closed(backend)
    finally:
        await backend.stop()
