"""Supervise an engine process: start, readiness, health, restarts with back-off, step-downs.

Modelled on ollama's llm/server.go: a free port on 127.0.0.1, the child's output kept (here in a
log file, engine/engine_log.py, so the engine survives the language server that started it when
other editors still use it), readiness as ``/health`` then ``/v1/models`` with a stall timer that resets whenever
the engine writes progress (model loads take minutes), the last error line kept for the user.
On exit: diagnose (engine/planning/diagnose.py), step down, restart after 1, 2, 4... s; five failures
within a minute is a crash loop: stop with the diagnosis. ``stop`` ends the whole process group
and what its session left (engine/child.py owns the process). Once ready, a health check left
unanswered while the engine's processes are at work (llama.cpp reading a long prompt answers
nothing else) is no failure; only three idle ones in a row, or ``Policy.busy_limit_s`` without an
answer, get it restarted (engine/busy.py).

``before_restart``, when given, is awaited once the old process is gone and before the back-off:
a process that shares the card gives it up first (engine/paired.py: the next-edit process stops
before the completion one restarts, so vLLM's memory profile of the card never counts it). It is
best-effort: a hook that raises is logged and the restart goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2 as httpx

from ..httpclient import http_client
from .busy import Silence
from .child import Child
from .command import EngineCommand
from .engine_log import EngineLog, progress
from .guard import STOPPED_ON_PURPOSE
from .planning.diagnose import Diagnosis, diagnose, next_plan
from .planning.hardware import Gpu
from .planning.plan import LaunchPlan
from .port_owner import owned
from .readiness import PROBE_TIMEOUT_S, healthy, serving
from .supervised import EngineEvent, EngineState, Extras, Policy, free_port

log = logging.getLogger(__name__)


class ProcessSupervisor:
    def __init__(
        self,
        plan: LaunchPlan,
        build: Callable[[LaunchPlan, int], EngineCommand],
        log_dir: Path,
        on_event: Callable[[EngineEvent], None],
        policy: Policy,
        gpus: list[Gpu],  # for step-downs that re-plan by arithmetic ([]: none)
        before_restart: Callable[[], Awaitable[None]] | None = None,  # module doc (engine/paired.py)
    ) -> None:
        self.plan, self.build, self.log_dir, self.on_event = plan, build, log_dir, on_event
        self.gpus, self.policy, self.before_restart = gpus, policy, before_restart
        self.state = EngineState.STOPPED
        self.endpoint: str | None = None
        self.last_error = ""
        self.pid: int | None = None
        self.port: int | None = None
        self.output = EngineLog(log_dir)
        self.restarts = 0
        self._child: Child | None = None  # the running engine (or the last one), and its session
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # set on every state event
        self._stopping = False
        self._failures: deque[float] = deque()

    @property
    def log_path(self) -> Path | None:
        return self.output.path

    @property
    def tail(self) -> deque[str]:
        return self.output.tail

    def extras(self) -> Extras:
        return Extras()

    def describe(self) -> str | None:
        return None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self._run())

    async def wait_ready(self, timeout_s: float) -> bool:
        """True once ready; False at once when it failed or supervision ended (a stop, or its guard
        stopped it on purpose): an ``engine start`` must not wait its full timeout for nothing."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.state not in (EngineState.READY, EngineState.FAILED) and not self._ended():
                    self._changed.clear()
                    await self._changed.wait()
        return self.state is EngineState.READY

    async def stop(self) -> None:
        self._stopping = True
        await self._terminate()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._emit(EngineState.STOPPED, "engine stopped")

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            outcome = await self._launch_and_watch()
            if self._stopping:
                return
            if self._child is not None and self._child.returncode == STOPPED_ON_PURPOSE:
                self._emit(EngineState.STOPPED, f"engine stopped: {self.tail[-1] if self.tail else 'by its guard'}")
                return
            diagnosis = self._diagnose(outcome)
            self.last_error = diagnosis.message
            if self._crash_loop():
                window = self.policy.crash_loop
                self._emit(EngineState.FAILED, f"crash loop ({window[0]} failures in {window[1]:.0f} s): "
                           f"{diagnosis.message}")
                return
            plan, why = next_plan(self.plan, diagnosis, self.gpus) if diagnosis.retry else (None, diagnosis.message)
            if plan is None:
                self._emit(EngineState.FAILED, f"{diagnosis.message}; {why}" if why != diagnosis.message else why)
                return
            if plan != self.plan:
                log.warning("engine step-down: %s (%s)", why, diagnosis.message)
            self.plan = plan
            delay = self.policy.backoff_s[min(len(self._failures), len(self.policy.backoff_s)) - 1]
            self._emit(EngineState.RESTARTING, f"{diagnosis.message}; restarting in {delay:.0f} s ({why})")
            self.restarts += 1
            await self._before_restart()
            await asyncio.sleep(delay)

    async def _launch_and_watch(self) -> str:
        self.port = self.plan.port or free_port()
        command = self.build(self.plan, self.port)
        with self.output.create(self.port) as out:
            self._child = child = await Child.spawn(command, out)
        self.pid = child.pid
        self.endpoint = f"http://127.0.0.1:{self.port}/v1"
        self._emit(EngineState.STARTING, f"starting {self.plan.describe()}")
        async with http_client(PROBE_TIMEOUT_S, command.api_key) as http:
            outcome = await self._watch_start(http, child)
            if outcome == "ready":
                self._emit(EngineState.READY, f"ready: {self.plan.served_name}")
                outcome = await self._watch_ready(http, child)
        await self._terminate()  # exited or not: nothing of it may outlive this start
        return outcome

    async def _watch_start(self, http: httpx.AsyncClient, child: Child) -> str:
        assert self.endpoint is not None
        offset, last_progress = 0, time.monotonic()
        while not self._stopping:
            offset, fresh = self.output.read(offset)
            if (step := progress(fresh)) is not None:
                last_progress = time.monotonic()
                self._emit(EngineState.STARTING, *step)
            child.look()
            if child.returncode is not None:
                self.output.read(offset)
                return "exited"
            if await self._ours() and await serving(http, self.endpoint):
                return "ready"
            if time.monotonic() - last_progress > self.policy.stall_timeout_s:
                return "stalled"
            await child.wait_for(self.policy.poll_s)
        return "stopping"

    async def _watch_ready(self, http: httpx.AsyncClient, child: Child) -> str:
        assert self.endpoint is not None
        offset = self.output.size()
        silence: Silence | None = None  # the current run of unanswered checks (engine/busy.py)
        while not self._stopping:
            await child.wait_for(self.policy.health_interval_s)
            offset, _ = self.output.read(offset)
            child.look()
            if child.returncode is not None:
                return "exited"
            if await self._healthy(http):
                silence = None
                continue
            silence = Silence(child.session, self.policy) if silence is None else silence
            if (outcome := await silence.failed()) is not None:
                self._emit(EngineState.UNHEALTHY, self._diagnose(outcome).message)
                return outcome
        return "stopping"

    # -- helpers -------------------------------------------------------------------------------
    async def _before_restart(self) -> None:
        """The hook is best-effort (module doc: the process it stops is a guest on the card): one
        that raises is logged with its exception and the restart goes on. Left to propagate it
        ended this loop silently, the state stuck at RESTARTING (tests/e2e/test_supervisor_hook.py)."""
        if self.before_restart is None:
            return
        try:
            await self.before_restart()
        except Exception:
            log.exception("engine restart: the before-restart hook failed; restarting anyway")

    async def _healthy(self, http: httpx.AsyncClient) -> bool:
        """Is the running engine well (engine/readiness.py)? A method, so the fleet's router can
        read its own ``/liveness`` instead (engine/fleet.py's ``RouterSupervisor``)."""
        return self.endpoint is not None and await self._ours() and await healthy(http, self.endpoint)

    async def _ours(self) -> bool:
        """Does this user hold the engine's port? Probes carry the engine's key, and a port fixed
        behind a team's front may be another user's while the engine restarts (engine/port_owner.py):
        then it is not our engine, and nothing is sent to it."""
        return self.port is not None and await asyncio.to_thread(owned, self.port)

    def _diagnose(self, outcome: str) -> Diagnosis:
        if outcome == "stalled":
            return Diagnosis("stall", f"no progress for {self.policy.stall_timeout_s:.0f} s while starting")
        if outcome == "unhealthy":
            return Diagnosis("crash", "the engine stopped answering /health")
        if outcome == "silent":
            return Diagnosis("stall", f"no answer to /health for {self.policy.busy_limit_s:.0f} s, though at work")
        return diagnose(self.tail, self.plan)

    def _crash_loop(self) -> bool:
        now = time.monotonic()
        self._failures.append(now)
        count, window = self.policy.crash_loop
        while self._failures and now - self._failures[0] > window:
            self._failures.popleft()
        return len(self._failures) >= count

    def _ended(self) -> bool:
        return self.state is EngineState.STOPPED and self._task is not None and (self._stopping or self._task.done())

    async def _terminate(self) -> None:
        """Nothing of the last engine may outlive this (engine/child.py)."""
        if self._child is not None:
            await self._child.terminate(self.policy.stop_grace_s)

    def _emit(self, state: EngineState, message: str, percent: int | None = None) -> None:
        self.state = state
        self._changed.set()
        try:
            self.on_event(EngineEvent(state, message, self.plan, self.endpoint, percent))
        except Exception:  # a listener's failure must not stop supervision
            log.exception("engine event listener failed")

