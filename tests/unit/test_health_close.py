"""``Health.close`` (backend/health.py, backend/served.py) cancels and awaits every task the health
owns: the shared served-model and family probes too, which the shutdown left pending (review
finding left from issue 21), and starts none after. Every backend it served closes, a replaced one
whose close had not started yet too, and one handed over after the shutdown is closed, not served
(``Services.reconnect`` builds none then: app.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from vllm_companion.app import build
from vllm_companion.backend import Backend, Connection, ModelInfo
from vllm_companion.backend.errors import BackendError, ErrorKind
from vllm_companion.backend.health import Health
from vllm_companion.config import BackendSettings, load_config
from vllm_companion.nextedit.model import trained_next_edit
from vllm_companion.status import ServerStatus, StatusReporter
from vllm_companion.telemetry.store import EventStore


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
    return Health(backend, "auto", status, Attached(), trained_next_edit)


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
    """Nothing runs after the shutdown, and a backend handed over after it is closed, not kept
    open as the served one (review finding: ``use`` switched to it and its client leaked)."""
    first = Held()
    health = health_of(first)
    await health.close()
    assert health.closed
    health.outcome(BackendError(ErrorKind.TIMEOUT, "no answer"))  # would probe, or watch for recovery
    health.watch_recovery()
    late = other_backend()
    health.use(late)
    health.use_next_edit(Connection.attach(BackendSettings(endpoint="http://127.0.0.1:7/v1")))
    assert health.backend is first and health.next_edit_backend() is None
    for _ in range(20):  # the handed backend's close, then nothing
        await asyncio.sleep(0)
    assert late.client.http.is_closed
    assert not others()


def other_backend(port: int = 8) -> Backend:
    return Backend(Connection.attach(BackendSettings(endpoint=f"http://127.0.0.1:{port}/v1")))


async def test_close_closes_a_replaced_backend_whose_close_had_not_started() -> None:
    """A route change spawns the old backend's close; a shutdown right after cancelled that task
    before it ran, and the old client stayed open (review finding): it is awaited, not cancelled."""
    old, new = Held(), other_backend()
    health = health_of(old)
    health.use(new)  # the old one's close is spawned, not yet started
    await health.close()
    assert old.client.http.is_closed and new.client.http.is_closed
    assert not others()


async def test_a_next_edit_backend_replaced_just_before_close_is_closed_too() -> None:
    health = health_of(Held())
    first = Connection.attach(BackendSettings(endpoint="http://127.0.0.1:7/v1"))
    health.use_next_edit(first)
    old = health.next_edit_backend()
    health.use_next_edit(None)  # the process stopped: its backend's close is spawned
    await health.close()
    assert old is not None and old.client.http.is_closed
    assert not others()


async def test_an_engine_endpoint_arriving_during_the_shutdown_starts_no_backend(tmp_path: Path) -> None:
    """``Services.aclose`` closes the health before the engine binding stops: the supervisor's
    READY in between went ``on_endpoint`` -> ``reconnect`` -> ``health.use(Backend(...))`` on the
    closed health, and the new client was never closed (review finding). Now nothing is built."""
    config, _ = load_config({"backend": {"endpoint": "http://127.0.0.1:9/v1"}})
    services = build(config, lambda method, params: None, lambda text, error: None, tmp_path / "loops.json",
                     EventStore(tmp_path / "events.sqlite"))
    served = services.health.backend
    await services.aclose()
    services.binding.launch = True
    services.binding._endpoint("http://127.0.0.1:7/v1", "engine-model", None)  # the supervisor's READY
    assert services.health.backend is served and served.client.http.is_closed
    assert services.health.next_edit_backend() is None
    assert not others()
