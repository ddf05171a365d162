"""A team's engine: the engine (or a fleet's router) on loopback and the front before it
(engine/front.py), supervised as one engine (engine/supervised.py).

The front starts once the engine is ready and is restarted if it dies; it runs under a
``--member`` guard, so it stops with the engine (``engine stop``, no user left). Editors on this
host keep the engine's own endpoint (the record's, with the record's key); the team's clients
come through the front's URL, which the record carries too (``extras``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace

from .supervised import Composite, EngineEvent, EngineState, Extras, Supervised
from .supervisor import ProcessSupervisor

FOREVER_S = 1e9  # the manager bounds the whole start (engine.readyTimeoutS)


class Fronted(Composite):
    """An engine (or a fleet) on loopback and the front before it, seen by the manager as one
    supervised engine: ready when both are; the record's endpoint stays the engine's own
    (editors on this host attach to it with the record's key), ``recorded`` adds the front's."""

    def __init__(self, make_inner: Callable[[Callable[[EngineEvent], None]], Supervised],
                 make_front: Callable[[Callable[[EngineEvent], None]], ProcessSupervisor],
                 url: str, on_event: Callable[[EngineEvent], None]) -> None:
        super().__init__()
        self.url, self.on_event = url, on_event
        self.inner, self.front = make_inner(self._inner_event), make_front(self._front_event)
        self._ready: EngineEvent | None = None  # the engine's last "ready"
        self._settled = asyncio.Event()

    @property
    def primary(self) -> Supervised:
        return self.inner

    @property
    def state(self) -> EngineState:
        return self.front.state if self.inner.state is EngineState.READY else self.inner.state

    def extras(self) -> Extras:
        """The inner engine's, and the front (``engine stop`` waits for it too; ``engine start``
        prints its URL)."""
        return replace(self.inner.extras(), front_pid=self.front.pid, front_url=self.url)

    def describe(self) -> str | None:
        return self.inner.describe()

    async def _run(self) -> None:
        await self.inner.start()
        if await self.inner.wait_ready(FOREVER_S):
            await self.front.start()

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._settled.wait()
        return self.state is EngineState.READY

    def _stop_order(self) -> list[list[Supervised]]:
        return [[self.front], [self.inner]]  # the team's requests end before the engine does

    def _inner_event(self, event: EngineEvent) -> None:
        if event.state is EngineState.READY:
            self._ready = event
            if self.front.state is not EngineState.READY:
                event = replace(event, state=EngineState.STARTING, message=f"{event.message}; starting the front")
        self._emit(event)

    def _front_event(self, event: EngineEvent) -> None:
        if self._stopping:
            return
        if event.state is EngineState.READY and self._ready is not None:
            self._emit(replace(self._ready, message=f"{self._ready.message}; serving on {self.url}"))
        elif event.state in (EngineState.FAILED, EngineState.STOPPED):
            self._emit(replace(event, message=f"the front: {event.message}", endpoint=self._endpoint))
        else:  # restarting: editors on this host still reach the engine, the team waits for the front
            self._emit(EngineEvent(EngineState.STARTING, f"the front: {event.message}", event.plan,
                                   self._endpoint, event.percent))

    @property
    def _endpoint(self) -> str | None:
        return self._ready.endpoint if self._ready is not None else None

    def _emit(self, event: EngineEvent) -> None:
        if event.state in (EngineState.READY, EngineState.FAILED, EngineState.STOPPED):
            self._settled.set()
        self.on_event(event)
