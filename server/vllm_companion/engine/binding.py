"""Which engine the server talks to, and whether it is ready: one owner for the engine binding.

Attach mode (``backend.launch`` off): the configured endpoint, always "ready" (failures show as
backend outcomes). Launch mode: the ``EngineManager`` finds or starts the local engine; its
events drive ``state`` (a state machine: starting -> ready -> restarting/unhealthy -> ready, or
failed/stopped), and the endpoint, model and API key it reports become the backend settings
(``overrides``). Completion reads ``ready``; the status, the editor's progress (``listeners``) and
the backend settings follow from here; nothing else keeps a copy.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from typing import Any

from ..config import EngineSettings
from ..status import ServerStatus
from .manager import EngineManager
from .supervisor import EngineEvent, EngineState

log = logging.getLogger(__name__)


class EngineBinding:
    def __init__(self, status: ServerStatus, on_endpoint: Callable[[], None] = lambda: None) -> None:
        self.status, self.on_endpoint = status, on_endpoint
        self.launch = False
        self.state: EngineState | None = None
        self.endpoint: str | None = None
        self.model: str | None = None
        self.api_key: str | None = None
        self.listeners: list[Callable[[EngineEvent], None]] = []  # e.g. the editor's progress bar
        self.manager: EngineManager | None = None

    @property
    def ready(self) -> bool:
        """May completion use the backend now? Always in attach mode; launched: engine ready."""
        return not self.launch or (self.state is EngineState.READY and self.endpoint is not None)

    def overrides(self) -> dict[str, Any]:
        """Backend settings the launched engine decides (a settings source above the user's)."""
        if not self.launch or self.endpoint is None:
            return {}
        priority = self.manager is not None and self.manager.settings.kind == "vllm"  # launched with the policy
        return {"backend": {"endpoint": self.endpoint, "model": self.model, "apiKey": self.api_key,
                            "priority": priority}}

    async def start(self, settings: EngineSettings) -> bool:
        """Launch mode: attach to or start the local engine (events report the way there)."""
        self.launch = True
        self.manager = EngineManager(settings, self._event, self._endpoint)
        atexit.register(self.manager.release_sync)
        return await self.manager.acquire()

    def configure(self, settings: EngineSettings) -> None:
        if self.manager is not None:
            self.manager.settings = settings

    async def stop(self) -> None:
        manager, self.manager = self.manager, None
        if manager is not None:
            await manager.release()
            atexit.unregister(manager.release_sync)

    def _event(self, event: EngineEvent) -> None:
        self.state = event.state
        self.status.engine(event.state.value, event.message[:300])
        if event.state is EngineState.FAILED:
            self.status.tell_user(f"vLLM Companion engine: {event.message}")
        elif event.state is EngineState.RESTARTING:
            self.status.tell_user(f"vLLM Companion engine: {event.message}", error=False)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # the editor link may be gone: the engine goes on
                log.debug("engine listener failed", exc_info=True)

    def _endpoint(self, endpoint: str, model: str, api_key: str | None) -> None:
        self.endpoint, self.model, self.api_key = endpoint, model, api_key
        self.on_endpoint()
