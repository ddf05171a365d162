"""What the manager holds: one supervised engine, whatever runs it (issue 21, point 4).

A single engine (``ProcessSupervisor``), a fleet of replicas behind vLLM's router (``Fleet``) and an
engine behind the team's front (``Fronted``) all answer the same small interface, modelled on
ollama's ``LlamaServer`` (llm/server.go: Ping/WaitUntilRunning/Close/Pid/...): start, wait ready,
stop, state, pid, port, log path; plus what the registry record says of it and where a team's
clients reach it. So the manager, the command line and the record never ask which kind it is.
The events and the policy every supervisor shares live here too.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from .planning.plan import LaunchPlan


class EngineState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"
    FAILED = "failed"


@dataclass(frozen=True)
class EngineEvent:
    state: EngineState
    message: str
    plan: LaunchPlan
    endpoint: str | None = None
    percent: int | None = None


@dataclass(frozen=True)
class Policy:
    stall_timeout_s: float = 300.0  # no output and not ready for this long: hung
    poll_s: float = 0.25
    health_interval_s: float = 5.0
    health_failures: int = 3  # failed checks in a row that found the engine idle (engine/busy.py)
    busy_limit_s: float = 600.0  # unanswered this long is a stall even while at work (engine/busy.py)
    backoff_s: tuple[float, ...] = (1, 2, 4, 8, 16, 30)
    crash_loop: tuple[int, float] = (5, 60.0)  # this many failures within this many seconds
    stop_grace_s: float = 10.0


@dataclass(frozen=True)
class Extras:
    """What the registry record says of a supervised engine beyond its pid, port and log: the
    front's process and URL (a team's), the fleet's one-line summary (attached editors show it),
    the next-edit process (engine/paired.py: its guard, and its endpoint and served name while it
    is ready)."""

    front_pid: int | None = None
    front_url: str | None = None
    fleet: str | None = None
    next_edit_pid: int | None = None
    next_edit_endpoint: str | None = None
    next_edit_model: str | None = None


class Supervised(Protocol):
    """One supervised engine, as the manager sees it (module doc)."""

    @property
    def state(self) -> EngineState: ...
    @property
    def pid(self) -> int | None: ...  # the process the record names (a guard leads its group)
    @property
    def port(self) -> int | None: ...
    @property
    def log_path(self) -> Path | None: ...

    async def start(self) -> None: ...
    async def wait_ready(self, timeout_s: float) -> bool: ...
    async def stop(self) -> None: ...
    def extras(self) -> Extras: ...
    def describe(self) -> str | None: ...  # a line for the status as it starts (a fleet's layout)


class Composite:
    """An engine made of several supervisors (fleet.py, fronted.py, paired.py) is named by one of
    them, its ``primary``: the process the record names, its port and its log are that one's.

    Its life is the same whatever its parts: ``start`` runs the subclass's ``_run`` as one task;
    ``stop`` marks it stopping (its event handlers then stay quiet), cancels and awaits that task
    and every task ``_spawn`` made (none is left pending: "Task was destroyed but it is pending"),
    then stops the parts in the order ``_stop_order`` gives, each stage's parts together. A
    subclass says only what differs: its parts, ``_run`` and that order (and in ``_fresh`` what its
    handlers learned in a run, forgotten at the next start)."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None  # ``_run``
        self._tasks: set[asyncio.Task[None]] = set()  # what ``_spawn`` started, until done
        self._stopping = False

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._fresh()
            self._task = asyncio.create_task(self._run())

    def _fresh(self) -> None:
        """A start after a stop begins clean: a subclass forgets what its last run learned (paired.py:
        a next-edit process given up is tried again)."""

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in (self._task, *self._tasks) if t is not None and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # each ends cancelled or with what it raised
        for stage in self._stop_order():
            await asyncio.gather(*(part.stop() for part in stage))

    async def _run(self) -> None:
        raise NotImplementedError

    def _stop_order(self) -> list[list[Supervised]]:
        """The parts, in stages: each stage stopped together, once the one before has stopped."""
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` beside the event handler that asked for it; ``stop`` cancels and awaits it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def primary(self) -> Supervised:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self.primary.pid

    @property
    def port(self) -> int | None:
        return self.primary.port

    @property
    def log_path(self) -> Path | None:
        return self.primary.log_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
