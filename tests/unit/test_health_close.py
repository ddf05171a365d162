"""``Health.close`` (backend/health.py, backend/served.py) cancels and awaits every task the health
owns: the shared served-model and family probes too, which the shutdown left pending (review
finding left from issue 21), and starts none after."""

from __future__ import annotations

import asyncio
from typing import Any

from vllm_companion.backend import Backend, Connection, ModelInfo
from vllm_companion.backend.errors import BackendError, ErrorKind
from vllm_companion.backend.health import Health
from vllm_companion.config import BackendSettings
from vllm_companion.status import ServerStatus, StatusReporter


class Attached:
    launch = False
    ready = True


class Held(Backend):
    """An endpoint that lists its model only when ``listed`` is set, and never answers /tokenize."""

    def __init__(self) -> None:
        super().__init__(Connection.attach(BackendSettings(endpoint="http://127.0.0.1:9/v1")))
        self.listed = asyncio.Event()

    async def served_model(self) -> Any:
        await self.listed.wait()
        return ModelInfo("qwen2.5-coder-1.5b", 4096), {"qwen2.5-coder-1.5b": 4096}

    async def tokenize_count(self, text: str, model: str) -> int | None:
        await asyncio.Event().wait()
        return None


def health_of(backend: Backend) -> Health:
    status = ServerStatus(StatusReporter(lambda method, params: None, lambda text, error: None))
    return Health(backend, "auto", status, Attached())


def others() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_close_ends_a_model_probe_that_still_waits_on_the_endpoint() -> None:
    health = health_of(Held())
    health.check_soon()  # a listing in the background, no request waiting on it
    await asyncio.sleep(0)
    assert others()
    await health.close()
    assert not others()


async def test_close_ends_a_family_check_and_the_request_waiting_on_it() -> None:
    backend = Held()
    backend.listed.set()
    health = health_of(backend)
    request = asyncio.ensure_future(health.model_and_family())  # waits on the FIM check (/tokenize)
    for _ in range(5):
        await asyncio.sleep(0)
    assert not request.done() and health.served is not None
    await asyncio.wait_for(health.close(), 1)  # not the check's own 8 s deadline
    assert request.cancelled() and not others()


async def test_nothing_starts_after_close() -> None:
    health = health_of(Held())
    await health.close()
    health.outcome(BackendError(ErrorKind.TIMEOUT, "no answer"))  # would probe, or watch for recovery
    health.watch_recovery()
    health.use(Backend(Connection.attach(BackendSettings(endpoint="http://127.0.0.1:8/v1"))))
    assert not others()
