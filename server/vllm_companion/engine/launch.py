"""What the manager launches: the plan (from NVML's GPUs, or across an inventory's hosts) and the
supervised processes that serve it (one engine, or a fleet of replicas behind vLLM's router),
every command wrapped in the guard (engine/guard.py) so nothing outlives its users.

An engine that serves others (a key given: ``engine start --team``/``--api-key``, or a host
beyond loopback) listens on loopback on an internal port, behind the front (engine/front.py) that
takes ``engine.host``/``engine.port``: vLLM leaves /tokenize, /metrics, /invocations... open
without a key (vLLM issue #58144), the router its admin routes. ``Fronted`` (engine/fronted.py)
supervises the pair as one engine.

Where the plan serves a next-edit model beside the completion model (``LaunchPlan.next_edit``,
engine/planning/nextedit_plan.py), a single engine is two vLLM processes, ``Paired``
(engine/paired.py): the completion process at ``paired(plan)``'s share and context, the next-edit
process at its own, under a ``--member`` guard. A fleet keeps one process per replica. Behind a
front, the front routes requests that name the next-edit model to that process (engine/front_route.py).
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import EngineSettings
from ..loopback import is_loopback
from .command import EngineCommand, build_command
from .cpu_local import facts_here
from .fleet import Fleet, plan_fleet
from .fronted import FOREVER_S, Fronted
from .paired import Paired, next_edit_launch
from .planning.cluster import BadInventory, load_inventory, plan_cluster
from .planning.hardware import Gpu
from .planning.nextedit_plan import paired
from .planning.plan import LaunchPlan, NoFit, plan_launch
from .procs import GUARD_MODULE
from .router import router_command
from .supervised import EngineEvent, Policy, Supervised, free_port
from .supervisor import ProcessSupervisor

FRONT_MODULE = "vllm_companion.engine.front"
# The front prints nothing while it serves, and its /health is the engine's: only its exit counts.
FRONT_POLICY = Policy(stall_timeout_s=FOREVER_S, health_failures=1 << 30, busy_limit_s=FOREVER_S)


class LaunchRefused(Exception):
    """Why nothing can be launched (no plan, a missing piece, a team without a key): the message
    is the user's answer; the manager reports it as the engine's failure."""


def plan_for(settings: EngineSettings, gpus: list[Gpu]) -> LaunchPlan:
    """From NVML's GPUs, or across the hosts of ``engine.inventory`` (this host is the Ray head);
    raises ``LaunchRefused`` with why nothing can be planned."""
    if not settings.inventory:  # without a GPU the CPU's facts choose engine and model (engine/planning/cpu.py), unless
        cpu = None if settings.command else facts_here(settings.python)  # engine.command names one engine's launcher
        return plan_launch(gpus, settings.overrides(), cpu)
    try:
        found = plan_cluster(load_inventory(Path(settings.inventory)), settings.model, settings.max_model_len)
    except BadInventory as exc:
        raise LaunchRefused(str(exc)) from exc
    if isinstance(found, NoFit):
        raise LaunchRefused(found.why)
    return replace(found.plan, host=settings.host, port=settings.port)


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


@dataclass
class Launcher:
    settings: EngineSettings
    record: Path  # the registry record the guards read
    log_dir: Path
    key: Callable[[], str]  # the engine's API key at build time (an adoption makes a new one)
    on_event: Callable[[EngineEvent], None]

    def supervise(self, plan: LaunchPlan, gpus: list[Gpu], model_path: str) -> tuple[Supervised, LaunchPlan]:
        """The supervisor for ``plan`` (not started) and the plan the record names; raises
        ``LaunchRefused`` with why not."""
        fleet = (self.settings.replicas or 1) > 1 or bool(self.settings.workers)
        if fleet and importlib.util.find_spec("vllm_router") is None:
            raise LaunchRefused("a fleet needs vLLM's router: pip install vllm-router==0.1.17")
        if not fronted(self.settings):
            return self.engine(plan, gpus, model_path)
        if not self.settings.api_key:
            raise LaunchRefused(f"listening on {self.settings.host} needs a key "
                                "(engine.apiKey, or engine start --team)")
        if not all(importlib.util.find_spec(m) for m in ("uvicorn", "starlette")):
            raise LaunchRefused("the team front needs uvicorn and starlette (they come with vLLM): "
                                "pip install uvicorn starlette")
        return self.fronted(plan, gpus, model_path)

    def engine(self, plan: LaunchPlan, gpus: list[Gpu], model_path: str) -> tuple[Supervised, LaunchPlan]:
        """The engine, or the fleet, for ``plan`` (not started), and the plan the record names."""
        policy = Policy(stall_timeout_s=self.settings.stall_timeout_s)
        if (self.settings.replicas or 1) <= 1 and not self.settings.workers:
            if (second := next_edit_launch(plan)) is not None:
                return self.paired(plan, second, gpus, model_path, policy)
            build = self.builder(plan.model, model_path)
            return ProcessSupervisor(plan, lambda p, port: build(p, port, None), self.log_dir, self.on_event,
                                     policy, gpus), plan
        fleet = plan_fleet(gpus, self.settings.overrides(), self.settings.replicas or 1, self.settings.workers or [],
                           self.settings.port)
        guard = self.guard()

        def build_router(workers: list[str]) -> EngineCommand:
            command = router_command(fleet.router, workers, self.key())
            return replace(command, argv=[*guard, *command.argv])

        replicas = self.builder(plan.model, model_path, member=True)
        return Fleet(fleet, replicas, build_router, self.log_dir, self.on_event, policy, gpus), fleet.router

    def paired(self, plan: LaunchPlan, second: LaunchPlan, gpus: list[Gpu], model_path: str,
               policy: Policy) -> tuple[Paired, LaunchPlan]:
        """The completion process at its share beside the next-edit process (``second``, its own
        port, the base model's tokenizer, a ``--member`` guard); the record names the first.
        The next-edit supervisor re-plans nothing by arithmetic (no GPUs): its model is fixed.
        Its port is fixed here when the completion process's is (``engine.port``, or the internal
        port behind a team's front): the front's command line names it (``front``), and a port
        picked afresh at each restart would leave the front forwarding to nothing. Otherwise a
        free one per start, as the completion process's (the record follows either)."""
        first, build = paired(plan), self.builder(plan.model, model_path)
        second = replace(second, port=free_port()) if self.settings.port else second
        python, guard = self.settings.python or sys.executable, self.guard(member=True)
        tokenizer = plan.next_edit.tokenizer if plan.next_edit is not None else None

        def build_second(p: LaunchPlan, port: int) -> EngineCommand:
            command = build_command(p, port, p.model, python, self.settings.command, self.key(), tokenizer)
            return replace(command, argv=[*guard, *command.argv])

        pair = Paired(
            lambda on_event, before_restart: ProcessSupervisor(first, lambda p, port: build(p, port, None),
                                                               self.log_dir, on_event, policy, gpus, before_restart),
            lambda on_event: ProcessSupervisor(second, build_second, self.log_dir, on_event, policy, []),
            self.on_event)
        return pair, first

    def fronted(self, plan: LaunchPlan, gpus: list[Gpu], model_path: str) -> tuple[Fronted, LaunchPlan]:
        """The engine (or the fleet's router) on loopback on an internal port, the front on
        ``engine.host``:``engine.port``."""
        internal, port = free_port(), self.settings.port or free_port()
        inside = replace(self, settings=self.settings.model_copy(update={"host": "127.0.0.1", "port": internal}))
        named: list[LaunchPlan] = []
        beside: list[LaunchPlan] = []  # the next-edit process's plan (its port fixed: ``paired``)

        def make_inner(on_event: Callable[[EngineEvent], None]) -> Supervised:
            inner, plan_named = replace(inside, on_event=on_event).engine(
                replace(plan, host="127.0.0.1", port=internal), gpus, model_path)
            named.append(plan_named)
            beside.extend([inner.next_edit.plan] if isinstance(inner, Paired) else [])
            return inner

        pair = Fronted(make_inner, lambda on_event: self.front(named[0], port, on_event, beside[0] if beside else None),
                       front_url(self.settings.host, port), self.on_event)
        return pair, named[0]

    def front(self, upstream: LaunchPlan, port: int, on_event: Callable[[EngineEvent], None],
              next_edit: LaunchPlan | None) -> ProcessSupervisor:
        """The front on ``port`` before the engine at ``upstream``'s port (and the next-edit
        process at ``next_edit``'s, engine/front_route.py); both keys in its environment (its
        command line is world-readable; the next-edit process checks the engine's key too:
        ``paired``), under a ``--member`` guard."""
        from .front import KEY_ENV, UPSTREAM_KEY_ENV  # starlette: installed with vLLM, not with us

        guard, key = self.guard(member=True), self.settings.api_key or ""
        argv = [*guard, sys.executable, "-m", FRONT_MODULE, "--host", self.settings.host, "--port", str(port),
                "--upstream", f"http://127.0.0.1:{upstream.port}", "--max-tokens", str(self.settings.team_max_tokens)]
        if next_edit is not None and next_edit.port is not None:
            argv += ["--next-edit-upstream", f"http://127.0.0.1:{next_edit.port}",
                     "--next-edit-model", next_edit.served_name]

        def build(_plan: LaunchPlan, _port: int) -> EngineCommand:
            return EngineCommand(argv, {KEY_ENV: key, UPSTREAM_KEY_ENV: self.key()}, key)

        plan = replace(upstream, engine="front", host=self.settings.host, port=port)
        return ProcessSupervisor(plan, build, self.log_dir, on_event, FRONT_POLICY, [])

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
