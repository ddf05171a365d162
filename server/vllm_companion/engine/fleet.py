"""A fleet: engine replicas behind vLLM's own router (PyPI ``vllm-router``), supervised as one engine.

Each local replica is a planned engine under its own ``ProcessSupervisor`` (restarts, step-downs,
logs), on a port fixed for the fleet's life so the router's worker list stays true across
restarts, on its own GPUs (``CUDA_VISIBLE_DEVICES``). Remote replicas (``engine.workers``: engines
other hosts serve, e.g. ``engine start --team`` there) join the router's list as they are. The
router is one more supervised process (engine/router.py: its command line, its ``/liveness``
supervision, its admin calls), started once the local replicas are ready or failed; the language
servers attach to it as to a single engine (the registry records the router).

Routing (docs/deployment.md): ``consistent_hash`` on the ``X-Session-ID`` header each language
server sends (backend/connection.py), so one editor's consecutive prompts, which share their
prefix, reach the replica that holds that prefix in its cache; a replica that fails its health
checks leaves the ring and its sessions move (measured behaviour of the router: engine/router.py).

The router's admin routes answer anyone on this machine (``/add_worker``, ``/remove_worker``):
``watch_workers`` stops the fleet if its worker list ever holds a URL we did not give it, and puts
back one of ours that was removed (the router never does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx2 as httpx

from .command import EngineCommand
from .planning.hardware import Gpu
from .planning.plan import LaunchPlan, plan_launch
from .router import CALL_S, ROUTER_POLICY, RouterSupervisor, add_worker, list_workers
from .supervised import Composite, EngineEvent, EngineState, Extras, Policy, Supervised, free_port
from .supervisor import ProcessSupervisor

log = logging.getLogger(__name__)
WATCH_S = 2.0  # how often the router's worker list is read
FOREVER_S = 1e9  # the manager bounds the whole start (engine.readyTimeoutS)


@dataclass(frozen=True)
class FleetPlan:
    replicas: tuple[LaunchPlan, ...]  # local replicas, each on a fixed port
    devices: tuple[str | None, ...]  # CUDA_VISIBLE_DEVICES per local replica (None: CPU)
    remote: tuple[str, ...]  # other hosts' engines, as root URLs (http://host:port)
    router: LaunchPlan  # the router as the manager sees an engine: served name, port

    @property
    def local_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p.port}" for p in self.replicas]

    def describe(self) -> str:
        parts = [f"{len(self.replicas)} local"] + ([f"{len(self.remote)} remote"] if self.remote else [])
        return f"vllm-router ({ROUTER_POLICY}) over {' + '.join(parts)} replicas of {self.router.served_name}"


def plan_fleet(gpus: list[Gpu], overrides: dict[str, object], replicas: int, remote: list[str],
               router_port: int | None = None) -> FleetPlan:
    """Split the GPUs evenly between ``replicas`` (each planned on its share), or CPU replicas."""
    per = len(gpus) // replicas if gpus and replicas else 0
    shares = [gpus[i * per:(i + 1) * per] for i in range(replicas)] if per else [[] for _ in range(replicas)]
    plans = []
    for share in shares:
        plan = plan_launch(share, {**overrides, "host": "127.0.0.1", "port": None})
        plans.append(replace(plan, host="127.0.0.1", port=free_port()))
    devices = tuple(",".join(str(g.index) for g in share) if share else None for share in shares)
    base = plans[0] if plans else plan_launch([], overrides)
    router = replace(base, engine="router", host="127.0.0.1", port=router_port or free_port(),
                     reason=f"{replicas} replicas ({base.reason})")
    return FleetPlan(tuple(plans), devices, tuple(u.rstrip("/") for u in remote), router)


class Fleet(Composite):
    """The replicas and the router, seen by ``EngineManager`` as one supervised engine."""

    def __init__(self, plan: FleetPlan, build: Callable[[LaunchPlan, int, str | None], EngineCommand],
                 build_router: Callable[[list[str]], EngineCommand], log_dir: Path,
                 on_event: Callable[[EngineEvent], None], policy: Policy, gpus: list[Gpu]) -> None:
        super().__init__()
        self.fleet, self.on_event = plan, on_event
        self.replicas = [
            ProcessSupervisor(p, _with_devices(build, dev), log_dir, self._replica_event(i), policy, gpus)
            for i, (p, dev) in enumerate(zip(plan.replicas, plan.devices, strict=True))
        ]
        self.workers: list[str] = []
        self.router = RouterSupervisor(plan.router, lambda _plan, _port: build_router(self.workers), log_dir,
                                       self._router_event, policy, [])
        self._settled = asyncio.Event()  # the router is ready, or the fleet failed
        self._lost_remote: set[str] = set()  # remote workers the router lost, reported once

    # The supervisor interface (engine/supervised.py): the router is "the engine".
    @property
    def primary(self) -> Supervised:
        return self.router

    @property
    def state(self) -> EngineState:
        return self.router.state

    def extras(self) -> Extras:
        return Extras(fleet=self.summary())  # what the attached editors' status shows

    def describe(self) -> str | None:
        return f"fleet: {self.fleet.describe()}"

    def summary(self) -> str:
        """One line for the status and the registry: how many replicas serve, and what the others do."""
        ready = sum(r.state is EngineState.READY for r in self.replicas)
        parts = [f"{ready} of {len(self.replicas)} local replicas ready"]
        parts += [f"replica {i + 1} {r.state.value}: {r.last_error}" if r.last_error else f"replica {i + 1} "
                  f"{r.state.value}" for i, r in enumerate(self.replicas) if r.state is not EngineState.READY]
        if self.fleet.remote:
            parts.append(f"{len(self.fleet.remote)} remote")
        return "; ".join(parts)

    async def _run(self) -> None:
        for replica in self.replicas:
            await replica.start()
        await asyncio.gather(*(r.wait_ready(FOREVER_S) for r in self.replicas))
        ready = [url for url, r in zip(self.fleet.local_urls, self.replicas, strict=True)
                 if r.state is EngineState.READY]
        self.workers = ready + list(self.fleet.remote)
        if not self.workers:
            self._emit(EngineState.FAILED, f"no replica started: {self.summary()}")
            return
        await self.router.start()
        await self.watch_workers()

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._settled.wait()
        return self.router.state is EngineState.READY

    def _stop_order(self) -> list[list[Supervised]]:
        return [[self.router], list(self.replicas)]  # no request reaches a replica as it stops

    async def watch_workers(self) -> None:
        """Read the router's worker list every ``WATCH_S`` (its admin routes answer anyone on this
        machine). A URL we did not give it: fail closed, requests must never reach an engine we did
        not choose; the fleet is reported failed, the manager drops the record, the guards stop it
        all. One of ours missing (``/remove_worker``): put it back, once it answers. Each call is
        bounded (engine/router.py) and a list we cannot read is skipped, so nothing the router answers
        stalls the event loop or ends the watch."""
        async with httpx.AsyncClient(timeout=CALL_S, trust_env=False) as http:  # our router, on loopback: no proxy
            while True:
                await asyncio.sleep(WATCH_S)
                if self.router.state is not EngineState.READY:
                    continue
                listed = await list_workers(http, self.router.port)
                if listed is None:
                    continue
                if strangers := sorted(listed - self._ours())[:4]:
                    log.error("router lists workers we did not start: %s; stopping the fleet", strangers)
                    self._emit(EngineState.FAILED, f"the router lists a worker we did not start "
                               f"({', '.join(strangers)}): someone used its admin route; fleet stopped")
                    return
                for url in sorted(self._ours() - listed):
                    await self._put_back(http, url)

    def _ours(self) -> set[str]:
        return {u.rstrip("/") for u in self.workers}

    async def _put_back(self, http: httpx.AsyncClient, url: str) -> None:
        """Re-add one of our local replicas the router lost, once its supervisor has it ready:
        ``/add_worker`` holds the call until the worker answers ``/health`` (up to the router's
        120 s start-up timeout), so a replica still restarting waits for a later round. A remote
        worker is only reported: it may never pass the router's unkeyed health check (its front
        asks a key, docs/deployment.md), and the call would hang. The worker comes back with the
        router's default health checks (60 s; its breaker and our retries still move requests off
        it at once: measured, vllm-router 0.1.17)."""
        replica = dict(zip(self.fleet.local_urls, self.replicas, strict=True)).get(url)
        if replica is None:
            if url not in self._lost_remote:
                self._lost_remote.add(url)
                log.warning("router lost remote worker %s (removed through its admin route?)", url)
            return
        if replica.state is not EngineState.READY:
            return
        answer = await add_worker(http, self.router.port, url)
        if answer is None:
            log.warning("could not put worker %s back: the router did not answer within %.0f s", url, CALL_S)
            return
        text = (answer[1] or b"")[:120].decode("utf-8", "replace")
        log.warning("router lost worker %s (removed through its admin route?): put back (%d %s)", url, answer[0], text)

    def _replica_event(self, index: int) -> Callable[[EngineEvent], None]:
        def on_event(event: EngineEvent) -> None:
            log.info("replica %d: %s %s", index + 1, event.state.value, event.message)
            if self._stopping:
                return
            if self.router.state is EngineState.READY:
                self._emit(EngineState.READY, f"fleet: {self.summary()}")
            else:
                self._emit(EngineState.STARTING, f"replica {index + 1}: {event.message}", event.percent)

        return on_event

    def _router_event(self, event: EngineEvent) -> None:
        message = f"{self.fleet.describe()}: {self.summary()}" if event.state is EngineState.READY else (
            f"router: {event.message}")
        self._emit(event.state, message, event.percent)

    def _emit(self, state: EngineState, message: str, percent: int | None = None) -> None:
        if state in (EngineState.READY, EngineState.FAILED):
            self._settled.set()
        endpoint = f"http://127.0.0.1:{self.fleet.router.port}/v1"
        try:
            self.on_event(EngineEvent(state, message, self.fleet.router, endpoint, percent))
        except Exception:  # a listener's failure must not stop supervision
            log.exception("fleet event listener failed")


def _with_devices(build: Callable[[LaunchPlan, int, str | None], EngineCommand],
                  devices: str | None) -> Callable[[LaunchPlan, int], EngineCommand]:
    return lambda plan, port: build(plan, port, devices)
