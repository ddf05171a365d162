"""Supervise an engine process: start, readiness, health, restarts with back-off, step-downs.

Modelled on ollama's llm/server.go: a free port on 127.0.0.1, the child's output kept (here in a
log file, so the engine survives the language server that started it when other editors still
use it), readiness as ``/health`` then ``/v1/models`` with a stall timer that resets whenever
the engine writes progress (model loads take minutes), the last error line kept for the user.
On exit: diagnose (engine/diagnose.py), step down, restart after 1, 2, 4... s; five failures
within a minute is a crash loop: stop with the diagnosis. ``stop`` ends the whole process group.

Before every restart and on ``stop``, whatever is left of the old engine's session is reaped
(``procs.reap``: by session, parentage, identity and the guard's mark in the environment): the
guard (engine/guard.py) does so itself before it exits, and this sweep covers a guard that was
killed first, a worker forked after the guard was last seen and one that left the session. vLLM's
free-memory check would fail a restart beside a leftover ``VLLM::EngineCore`` holding the GPU (issue 19, point 9).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx2 as httpx

from .command import EngineCommand
from .diagnose import Diagnosis, diagnose, next_plan
from .guard import STOPPED_ON_PURPOSE
from .hardware import Gpu
from .plan import LaunchPlan
from .procs import Watched, reap, signal_child_group
from .registry import private_dir

log = logging.getLogger(__name__)
_PERCENT = re.compile(r"(\d{1,3})%")
_OUR_PROBES = re.compile(r'"GET /(health|v1/models) HTTP')


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
    health_failures: int = 3
    backoff_s: tuple[float, ...] = (1, 2, 4, 8, 16, 30)
    crash_loop: tuple[int, float] = (5, 60.0)  # this many failures within this many seconds
    stop_grace_s: float = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessSupervisor:
    def __init__(
        self,
        plan: LaunchPlan,
        build: Callable[[LaunchPlan, int], EngineCommand],
        log_dir: Path,
        on_event: Callable[[EngineEvent], None] = lambda e: None,
        policy: Policy | None = None,
        gpus: list[Gpu] | None = None,
    ) -> None:
        self.plan, self.build, self.log_dir, self.on_event = plan, build, log_dir, on_event
        self.gpus = gpus or []  # for step-downs that re-plan by arithmetic
        self.policy = policy or Policy()
        self.state = EngineState.STOPPED
        self.endpoint: str | None = None
        self.last_error = ""
        self.pid: int | None = None
        self.port: int | None = None
        self.log_path: Path | None = None
        self.restarts = 0
        self.tail: deque[str] = deque(maxlen=200)
        self._proc: asyncio.subprocess.Process | None = None
        self._session: Watched | None = None  # the running engine's session, for the sweep after it
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # set on every state event
        self._stopping = False
        self._failures: deque[float] = deque()

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
            if self._proc is not None and self._proc.returncode == STOPPED_ON_PURPOSE:
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
            await asyncio.sleep(delay)

    async def _launch_and_watch(self) -> str:
        self.port = self.plan.port or free_port()
        command = self.build(self.plan, self.port)
        private_dir(self.log_dir)
        self.log_path = self.log_dir / f"engine-{self.port}.log"
        self.tail.clear()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *command.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **command.env}, start_new_session=True,
            )
        self.pid = self._proc.pid
        self._session = Watched.child(self._proc.pid)
        self.endpoint = f"http://127.0.0.1:{self.port}/v1"
        self._emit(EngineState.STARTING, f"starting {self.plan.describe()}")
        headers = {"Authorization": f"Bearer {command.api_key}"} if command.api_key else {}
        async with httpx.AsyncClient(timeout=2.0, headers=headers) as http:
            outcome = await self._watch_start(http)
            if outcome == "ready":
                self._emit(EngineState.READY, f"ready: {self.plan.served_name}")
                outcome = await self._watch_ready(http)
        await self._terminate()  # exited or not: nothing of it may outlive this start
        return outcome

    async def _watch_start(self, http: httpx.AsyncClient) -> str:
        assert self._proc is not None and self.log_path is not None
        offset, last_progress = 0, time.monotonic()
        while not self._stopping:
            offset, fresh = self._read_log(offset)
            fresh = [x for x in fresh if not _OUR_PROBES.search(x)]  # our polling is not progress
            if fresh:
                last_progress = time.monotonic()
                self._progress(fresh)
            self._look()
            if self._proc.returncode is not None:
                self._read_log(offset)
                return "exited"
            if await self._is_ready(http):
                return "ready"
            if time.monotonic() - last_progress > self.policy.stall_timeout_s:
                return "stalled"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.poll_s):
                    await self._proc.wait()
        return "stopping"

    async def _watch_ready(self, http: httpx.AsyncClient) -> str:
        assert self._proc is not None
        offset, failures = self._log_size(), 0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.health_interval_s):
                    await self._proc.wait()
            offset, _ = self._read_log(offset)
            self._look()
            if self._proc.returncode is not None:
                return "exited"
            failures = 0 if await self._healthy(http) else failures + 1
            if failures >= self.policy.health_failures:
                self._emit(EngineState.UNHEALTHY, "the engine stopped answering /health")
                return "unhealthy"
        return "stopping"

    # -- helpers -------------------------------------------------------------------------------
    async def _healthy(self, http: httpx.AsyncClient) -> bool:
        """``/health`` where the engine has it (vLLM); llama.cpp's Python server has not (404)."""
        try:
            status = (await http.get(f"http://127.0.0.1:{self.port}/health")).status_code
        except httpx.HTTPError:
            return False
        return status == 200 or (status == 404 and await self._models_listed(http))

    async def _is_ready(self, http: httpx.AsyncClient) -> bool:
        return await self._healthy(http) and await self._models_listed(http)

    async def _models_listed(self, http: httpx.AsyncClient) -> bool:
        try:
            resp = await http.get(f"{self.endpoint}/models")
            return resp.status_code == 200 and bool(resp.json().get("data"))
        except (httpx.HTTPError, ValueError):
            return False

    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0

    def _read_log(self, offset: int) -> tuple[int, list[str]]:
        if self.log_path is None:
            return offset, []
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read(1 << 20)
        except OSError:
            return offset, []
        cut = data.rfind(b"\n") + 1
        lines = data[:cut].decode("utf-8", "replace").splitlines()
        self.tail.extend(lines)
        return offset + cut, lines

    def _progress(self, lines: list[str]) -> None:
        last = next((x for x in reversed(lines) if x.strip()), "")
        matches = [m for m in map(_PERCENT.search, reversed(lines)) if m]  # newest line with a percentage
        percent = min(100, int(matches[0].group(1))) if matches else None
        self._emit(EngineState.STARTING, last.strip()[-160:], percent)

    def _diagnose(self, outcome: str) -> Diagnosis:
        if outcome == "stalled":
            return Diagnosis("stall", f"no progress for {self.policy.stall_timeout_s:.0f} s while starting")
        if outcome == "unhealthy":
            return Diagnosis("crash", "the engine stopped answering /health")
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

    def _look(self) -> None:
        if self._session is not None:
            self._session.look()

    async def _terminate(self) -> None:
        """End the engine (SIGTERM to its group, SIGKILL after the grace), then whatever its
        session left behind; the group and the session are ours, whoever leads them by now."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            self._look()
            signal_child_group(proc.pid, signal.SIGTERM)  # our child, not yet reaped: its PID is its own
            try:
                async with asyncio.timeout(self.policy.stop_grace_s):
                    await proc.wait()
            except TimeoutError:
                self._look()
                signal_child_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        session = self._session
        if session is not None:
            left = await asyncio.to_thread(reap, session.leader, session.seen, self.policy.stop_grace_s)
            if left:
                log.error("engine processes still running after SIGKILL: %s", [p.pid for p in left])

    def _emit(self, state: EngineState, message: str, percent: int | None = None) -> None:
        self.state = state
        self._changed.set()
        try:
            self.on_event(EngineEvent(state, message, self.plan, self.endpoint, percent))
        except Exception:  # a listener's failure must not stop supervision
            log.exception("engine event listener failed")

