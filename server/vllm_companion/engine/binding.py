"""Which engine the server talks to, and whether it is ready: one owner for the engine binding.

Attach mode (``backend.launch`` off): the configured endpoint, always "ready" (failures show as
backend outcomes). Launch mode: the ``EngineManager`` finds or starts the local engine; its
events drive ``state`` (a state machine: starting -> ready -> restarting/unhealthy -> ready, or
failed/stopped), and the endpoint, model and API key it reports decide the connection
(``serving``; the app rebuilds what depends on it when ``on_endpoint`` fires, app.py), and so
does the next-edit process beside it when the plan runs one (``next_edit``, engine/paired.py). The
health reads ``ready`` (backend/health.py); the status, the editor's progress (``listeners``) and
the connection follow from here; nothing else keeps a copy.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable

from ..config import EngineSettings
from ..status import ServerStatus
from .manager import EngineManager
from .supervised import EngineEvent, EngineState

log = logging.getLogger(__name__)


class EngineBinding:
    def __init__(self, status: ServerStatus, on_endpoint: Callable[[], None]) -> None:
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

    @property
    def device(self) -> str | None:
        """Where the launched engine runs ("cuda" | "cpu"): whether the model is asked for next
        edits depends on it (nextedit/asking.py); None in attach mode or before it is known."""
        return self.manager.device if self.launch and self.manager is not None else None

    def serving(self) -> tuple[str, str, str | None, bool] | None:
        """What the launched engine decides of the connection (endpoint, model, key, whether it
        takes priorities), or None in attach mode and before the engine has an endpoint."""
        if not self.launch or self.endpoint is None or self.model is None:
            return None
        priority = self.manager is not None and self.manager.settings.kind == "vllm"  # launched with the policy
        return self.endpoint, self.model, self.api_key, priority

    def next_edit(self) -> tuple[str, str] | None:
        """The launched next-edit process (endpoint, served name) while it is ready, else None:
        next-edit requests then go to the completion model (nextedit/model.py)."""
        if not self.launch or self.manager is None or self.endpoint is None:
            return None
        return self.manager.next_edit

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
