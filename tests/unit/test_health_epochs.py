"""Health (backend/health.py) after a reconnect: a probe still running against the old endpoint
(up to its 8 s deadline) says nothing of the new one when it fails (review finding, issue 21)."""

from __future__ import annotations

import asyncio
from typing import Any

from vllm_companion.backend import Backend, Connection
from vllm_companion.backend.errors import BackendError, ErrorKind
from vllm_companion.backend.health import Health
from vllm_companion.config import BackendSettings
from vllm_companion.nextedit.model import trained_next_edit
from vllm_companion.status import ServerStatus, StatusReporter


class Attached:
    launch = False
    ready = True


class Hanging(Backend):
    """An old endpoint whose model listing fails only after the connection was replaced."""

    def __init__(self, release: asyncio.Event) -> None:
        super().__init__(Connection.attach(BackendSettings(endpoint="http://127.0.0.1:9/v1")))
        self.release = release

    async def served_model(self) -> Any:
        await self.release.wait()
        raise BackendError(ErrorKind.TIMEOUT, "no answer")


async def test_a_failed_probe_of_the_old_endpoint_leaves_the_new_one_available() -> None:
    release = asyncio.Event()
    status = ServerStatus(StatusReporter(lambda method, params: None, lambda text, error: None))
    health = Health(Hanging(release), "auto", status, Attached(), trained_next_edit)
    health.check_soon()  # a probe of the old endpoint, in the background
    await asyncio.sleep(0)
    health.use(Backend(Connection.attach(BackendSettings(endpoint="http://127.0.0.1:8/v1"))))
    release.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not health.availability.blocked() and health.refusal() is None
    await health.close()
