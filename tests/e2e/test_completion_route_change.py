"""A route change while a completion streams (completion/service.py, backend/connection.py
``LeasedClient``), with two fake engines on real sockets: the completion keeps the backend it
started on, and how it ends there is not held against the new route (chat/answer.py does the same,
tests/e2e/test_route_change.py). As there, the move is what ``Services.reconnect`` does when the
engine's endpoint changes (a session cannot move the endpoint over stdio: it is the user's alone).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import wait_for
from vllm_companion.app import Services, build
from vllm_companion.backend import Backend, Connection
from vllm_companion.completion.request import CompletionRequest
from vllm_companion.config import BackendSettings, load_config
from vllm_companion.telemetry.store import EventStore

URI = "file:///work/project/route.py"
TEXT = "def handler(request):\n    total = 1\n    \n"


@pytest.fixture
async def engines() -> AsyncIterator[tuple[FakeBackend, FakeBackend]]:
    a, b = await FakeBackend("model-a").start(), await FakeBackend("model-b").start()
    b.default = Reply(chunks=["return total"])
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


@pytest.fixture
async def services(engines: tuple[FakeBackend, FakeBackend], tmp_path: Path) -> AsyncIterator[Services]:
    config, _ = load_config({"backend": {"endpoint": engines[0].url}, "completion": {"cacheSize": 0}})
    built = build(config, lambda method, params: None, lambda text, error: None, tmp_path / "loops.json",
                  EventStore(tmp_path / "events.sqlite"))
    built.documents.open(URI, "python", 1, TEXT)
    try:
        yield built
    finally:
        await built.aclose()


def ask(services: Services) -> asyncio.Task[str | None]:
    return asyncio.ensure_future(services.completions.complete(CompletionRequest(URI, 2, 4, automatic=False)))


def move(services: Services, engine: FakeBackend) -> None:
    """What ``Services.reconnect`` does when the route changes."""
    services.health.use(Backend(Connection.attach(BackendSettings(endpoint=engine.url))))
    services.completions.connected()


async def test_a_replaced_routes_failure_does_not_block_the_new_route(
        engines: tuple[FakeBackend, FakeBackend], services: Services) -> None:
    a, b = engines
    # The old engine asks for a pause (503, Retry-After), after the route has moved on.
    a.default = Reply(status=503, first_delay_s=0.5, headers={"Retry-After": "30"}, error_body="busy")
    first = ask(services)
    await wait_for(lambda: len(a.generation_requests()) == 1, timeout=10)
    move(services, b)
    assert await asyncio.wait_for(first, 10) is None
    assert services.health.refusal() is None  # the new route is not left alone for 30 s
    assert await asyncio.wait_for(ask(services), 10) == "return total"
    assert len(b.generation_requests()) == 1


async def test_a_completion_started_before_the_move_finishes_on_the_old_route(
        engines: tuple[FakeBackend, FakeBackend], services: Services) -> None:
    a, b = engines
    a.default = Reply(chunks=["return ", "total"], first_delay_s=0.3)
    first = ask(services)
    await wait_for(lambda: len(a.generation_requests()) == 1, timeout=10)
    move(services, b)
    assert await asyncio.wait_for(first, 10) == "return total"
    assert not a.generation_requests()[0].client_closed
    assert not b.generation_requests()
