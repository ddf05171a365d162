"""Every backend fault is answered in bounded time and the server stays alive and recovers."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fake_backend import FakeBackend, Reply, dead_port
from tests.lsp_session import inline, open_doc, options, session, wait_for

FAST = {"timeoutMs": 1500}


def fast_options(url: str) -> dict[str, object]:
    opts = options(url, **FAST)
    opts["backend"] = {"endpoint": url, "firstTokenTimeoutS": 1.0, "connectTimeoutS": 1.0}
    return opts


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500, error_body="engine exploded"),
        Reply(status=503, error_body="overloaded"),
        Reply(hang=True),
        Reply(chunks=["par", "tial"], drop_after=1),
        Reply(chunks=["slow"] * 100, delay_s=0.5),
        Reply(first_delay_s=3.0, chunks=["late"]),
    ],
    ids=["500", "503", "hang", "closed-mid-stream", "slow-stream", "slow-first-token"],
)
async def test_fault_is_answered_within_seconds_and_server_lives(backend: FakeBackend, reply: Reply) -> None:
    backend.script = [reply]
    async with session(fast_options(backend.url)) as client:
        uri, pos = open_doc(client, "x = █\n")
        t0 = time.monotonic()
        result = await asyncio.wait_for(inline(client, uri, pos), 5)
        assert time.monotonic() - t0 < 4
        assert result is None or isinstance(result, str)
        backend.script = [Reply(chunks=["recovered"])]
        pos2 = pos.__class__(line=0, character=0)
        assert await inline(client, uri, pos2) == "recovered"


async def test_dead_port_then_backend_comes_back() -> None:
    port = dead_port()
    url = f"http://127.0.0.1:{port}/v1"
    async with session(fast_options(url)) as client:
        uri, pos = open_doc(client, "x = █\n")
        t0 = time.monotonic()
        assert await inline(client, uri, pos) is None
        assert time.monotonic() - t0 < 4
        await wait_for(lambda: any(s.get("state") == "unavailable" for s in map(_as_dict, client.statuses)))
        fake = await FakeBackend().start(port)
        try:
            fake.default = Reply(chunks=["back"])
            assert await inline(client, uri, pos) == "back"
            await wait_for(lambda: _as_dict(client.statuses[-1]).get("state") == "ready")
        finally:
            await fake.stop()


async def test_status_reports_ready_with_model_after_start(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        await wait_for(lambda: any(_as_dict(s).get("state") == "ready" for s in client.statuses))
        ready = next(_as_dict(s) for s in client.statuses if _as_dict(s).get("state") == "ready")
        assert ready["model"] == backend.model
        assert ready["family"] == "qwen2.5-coder"


def _as_dict(obj: object) -> dict[str, object]:
    if isinstance(obj, dict):
        return obj
    return {k: getattr(obj, k) for k in dir(obj) if not k.startswith("_")}


async def test_attach_mode_watches_health_without_requests() -> None:
    port = dead_port()
    url = f"http://127.0.0.1:{port}/v1"
    opts = fast_options(url)
    opts["backend"]["healthIntervalS"] = 0.3
    async with session(opts) as client:
        await wait_for(lambda: any(_as_dict(s).get("state") == "unavailable" for s in client.statuses))
        fake = await FakeBackend().start(port)
        try:  # no completion request: the watch alone notices the engine is back
            await wait_for(lambda: _as_dict(client.statuses[-1]).get("state") == "ready", timeout=5)
        finally:
            await fake.stop()
        await wait_for(lambda: _as_dict(client.statuses[-1]).get("state") == "unavailable", timeout=5)
