"""What the manager launches: the plan (from NVML's GPUs, or across an inventory's hosts) and the
supervised processes that serve it (one engine, or a fleet of replicas behind vLLM's router),
every command wrapped in the guard (engine/guard.py) so nothing outlives its users.

An engine that serves others (a key given: ``engine start --team``/``--api-key``, or a host
beyond loopback) listens on loopback on an internal port, behind the front (engine/front.py) that
takes ``engine.host``/``engine.port``: vLLM leaves /tokenize, /metrics, /invocations... open
without a key (vLLM issue #58144), the router its admin routes. ``Fronted`` supervises the pair
as one engine: the front starts once the engine is ready, is restarted if it dies, and runs
under a ``--member`` guard, so it stops with the engine (``engine stop``, no user left).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import EngineSettings
from .cluster import BadInventory, load_inventory, plan_cluster
from .command import EngineCommand, build_command
from .cpu_local import facts_here
from .fleet import Fleet, plan_fleet, router_command
from .hardware import Gpu
from .plan import LaunchPlan, plan_launch
from .procs import ProcessId
from .registry import is_loopback
from .supervisor import EngineEvent, EngineState, Policy, ProcessSupervisor, free_port

GUARD_MODULE = "vllm_companion.engine.guard"
FRONT_MODULE = "vllm_companion.engine.front"
FOREVER_S = 1e9  # the manager bounds the whole start (engine.readyTimeoutS)
# The front prints nothing while it serves, and its /health is the engine's: only its exit counts.
FRONT_POLICY = Policy(stall_timeout_s=FOREVER_S, health_failures=1 << 30)


def plan_for(settings: EngineSettings, gpus: list[Gpu]) -> LaunchPlan | str:
    """From NVML's GPUs, or across the hosts of ``engine.inventory`` (this host is the Ray head);
    a string says why nothing can be planned."""
    if not settings.inventory:  # without a GPU the CPU's facts choose engine and model (engine/cpu.py), unless
        cpu = None if settings.command else facts_here(settings.python)  # engine.command names one engine's launcher
        return plan_launch(gpus, settings.overrides(), cpu)
    try:
        found = plan_cluster(load_inventory(Path(settings.inventory)), settings.model, settings.max_model_len)
    except BadInventory as exc:
        return str(exc)
    return found if isinstance(found, str) else replace(found.plan, host=settings.host, port=settings.port)


def fronted(settings: EngineSettings) -> bool:
    """Does the engine serve beyond this user's editors? Then it goes behind the front."""
    return bool(settings.api_key) or not is_loopback(f"http://{settings.host}/")


def engine_key(settings: EngineSettings) -> str:
    """The key the engine checks: a random one per engine, which only the 0600 record and the front
    hold; the team's own key where remote workers (other hosts' team servers) check it too."""
    return settings.api_key if settings.api_key and settings.workers else secrets.token_urlsafe(24)


def front_url(host: str, port: int) -> str:
    """Where clients on this machine reach the front (a wildcard address is reached on loopback)."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/v1"


Inner = ProcessSupervisor | Fleet


class Fronted:
    """An engine (or a fleet) on loopback and the front before it, seen by the manager as one
    supervised engine: ready when both are; the record's endpoint stays the engine's own
    (editors on this host attach to it with the record's key), ``recorded`` adds the front's."""

    def __init__(self, make_inner: Callable[[Callable[[EngineEvent], None]], Inner],
                 make_front: Callable[[Callable[[EngineEvent], None]], ProcessSupervisor],
                 url: str, on_event: Callable[[EngineEvent], None]) -> None:
        self.url, self.on_event = url, on_event
        self.inner, self.front = make_inner(self._inner_event), make_front(self._front_event)
        self._ready: EngineEvent | None = None  # the engine's last "ready"
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.inner.pid

    @property
    def port(self) -> int | None:
        return self.inner.port

    @property
    def log_path(self) -> Path | None:
        return self.inner.log_path

    @property
    def state(self) -> EngineState:
        return self.front.state if self.inner.state is EngineState.READY else self.inner.state

    def recorded(self) -> dict[str, object]:
        """What the registry record says of the front (``engine stop`` waits for it too)."""
        front = ProcessId.of(self.front.pid) if self.front.pid else None
        fields: dict[str, object] = {"front": front.to_json() if front else None, "frontUrl": self.url}
        if isinstance(self.inner, Fleet):
            fields["fleet"] = self.inner.summary()
        return fields

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        await self.inner.start()
        if await self.inner.wait_ready(FOREVER_S):
            await self.front.start()

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._settled.wait()
        return self.state is EngineState.READY

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        await self.front.stop()
        await self.inner.stop()

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


@dataclass
class Launcher:
    settings: EngineSettings
    record: Path  # the registry record the guards read
    log_dir: Path
    key: Callable[[], str]  # the engine's API key at build time (an adoption makes a new one)
    on_event: Callable[[EngineEvent], None]

    def supervise(self, plan: LaunchPlan, gpus: list[Gpu], model_path: str
                  ) -> tuple[Inner | Fronted, LaunchPlan] | str:
        """The supervisor for ``plan`` (not started) and the plan the record names, or why not."""
        fleet = (self.settings.replicas or 1) > 1 or bool(self.settings.workers)
        if fleet and importlib.util.find_spec("vllm_router") is None:
            return "a fleet needs vLLM's router: pip install vllm-router==0.1.17"
        if not fronted(self.settings):
            return self.engine(plan, gpus, model_path)
        if not self.settings.api_key:
            return f"listening on {self.settings.host} needs a key (engine.apiKey, or engine start --team)"
        if not all(importlib.util.find_spec(m) for m in ("uvicorn", "starlette")):
            return "the team front needs uvicorn and starlette (they come with vLLM): pip install uvicorn starlette"
        return self.fronted(plan, gpus, model_path)

    def engine(self, plan: LaunchPlan, gpus: list[Gpu], model_path: str) -> tuple[Inner, LaunchPlan]:
        """The engine, or the fleet, for ``plan`` (not started), and the plan the record names."""
        policy = Policy(stall_timeout_s=self.settings.stall_timeout_s)
        if (self.settings.replicas or 1) <= 1 and not self.settings.workers:
            build = self.builder(plan.model, model_path)
            return ProcessSupervisor(plan, lambda p, port: build(p, port, None), self.log_dir, self.on_event,
                                     policy, gpus), plan
        fleet = plan_fleet(gpus, self.settings.overrides(), self.settings.replicas or 1, self.settings.workers or [],
                           self.settings.port)
        guard = self.guard()

        def build_router(workers: list[str]) -> EngineCommand:
            command = router_command(fleet, workers, self.key())
            return replace(command, argv=[*guard, *command.argv])

        replicas = self.builder(plan.model, model_path, member=True)
        return Fleet(fleet, replicas, build_router, self.log_dir, self.on_event, policy, gpus), fleet.router

    def fronted(self, plan: LaunchPlan, gpus: list[Gpu], model_path: str) -> tuple[Fronted, LaunchPlan]:
        """The engine (or the fleet's router) on loopback on an internal port, the front on
        ``engine.host``:``engine.port``."""
        internal, port = free_port(), self.settings.port or free_port()
        inside = replace(self, settings=self.settings.model_copy(update={"host": "127.0.0.1", "port": internal}))
        named: list[LaunchPlan] = []

        def make_inner(on_event: Callable[[EngineEvent], None]) -> Inner:
            inner, plan_named = replace(inside, on_event=on_event).engine(
                replace(plan, host="127.0.0.1", port=internal), gpus, model_path)
            named.append(plan_named)
            return inner

        pair = Fronted(make_inner, lambda on_event: self.front(named[0], port, on_event),
                       front_url(self.settings.host, port), self.on_event)
        return pair, named[0]

    def front(self, upstream: LaunchPlan, port: int, on_event: Callable[[EngineEvent], None]) -> ProcessSupervisor:
        """The front on ``port`` before the engine at ``upstream``'s port; both keys in its
        environment (its command line is world-readable), under a ``--member`` guard."""
        from .front import KEY_ENV, UPSTREAM_KEY_ENV  # starlette: installed with vLLM, not with us

        guard, key = self.guard(member=True), self.settings.api_key or ""
        argv = [*guard, sys.executable, "-m", FRONT_MODULE, "--host", self.settings.host, "--port", str(port),
                "--upstream", f"http://127.0.0.1:{upstream.port}"]

        def build(_plan: LaunchPlan, _port: int) -> EngineCommand:
            return EngineCommand(argv, {KEY_ENV: key, UPSTREAM_KEY_ENV: self.key()}, key)

        plan = replace(upstream, engine="front", host=self.settings.host, port=port)
        return ProcessSupervisor(plan, build, self.log_dir, on_event, FRONT_POLICY)

    def guard(self, member: bool = False) -> list[str]:
        """The guard's command line, to put before an engine's (``--member``: a fleet replica)."""
        return [sys.executable, "-m", GUARD_MODULE, str(self.record), *(["--member"] if member else []), "--"]

    def builder(self, first_model: str, model_path: str, member: bool = False
                ) -> Callable[[LaunchPlan, int, str | None], EngineCommand]:
        """Command lines for ``plan`` on ``port`` (on GPUs ``devices``), inside the guard
        (``--member``: one of a fleet's replicas, whose record names the router)."""
        python = self.settings.python or sys.executable
        guard = self.guard(member)

        def build(plan: LaunchPlan, port: int, devices: str | None) -> EngineCommand:
            path = model_path if plan.model == first_model else plan.model  # a step-down names its own
            command = build_command(plan, port, path, python, self.settings.command, self.key())
            env = {**command.env, "CUDA_VISIBLE_DEVICES": devices} if devices else command.env
            return replace(command, argv=[*guard, *command.argv], env=env)

        return build
