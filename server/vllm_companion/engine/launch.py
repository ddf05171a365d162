"""What the manager launches: the plan (from NVML's GPUs, or across an inventory's hosts) and the
supervised processes that serve it (one engine, or a fleet of replicas behind vLLM's router),
every command wrapped in the guard (engine/guard.py) so nothing outlives its users.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import EngineSettings
from .cluster import BadInventory, load_inventory, plan_cluster
from .command import EngineCommand, build_command
from .fleet import Fleet, plan_fleet, router_command
from .hardware import Gpu
from .plan import LaunchPlan, plan_launch
from .supervisor import EngineEvent, Policy, ProcessSupervisor

GUARD_MODULE = "vllm_companion.engine.guard"


def plan_for(settings: EngineSettings, gpus: list[Gpu]) -> LaunchPlan | str:
    """From NVML's GPUs, or across the hosts of ``engine.inventory`` (this host is the Ray head);
    a string says why nothing can be planned."""
    if not settings.inventory:
        return plan_launch(gpus, settings.overrides())
    try:
        found = plan_cluster(load_inventory(Path(settings.inventory)), settings.model, settings.max_model_len)
    except BadInventory as exc:
        return str(exc)
    return found if isinstance(found, str) else replace(found.plan, host=settings.host, port=settings.port)


@dataclass
class Launcher:
    settings: EngineSettings
    record: Path  # the registry record the guards read
    log_dir: Path
    key: Callable[[], str]  # the engine's API key at build time (an adoption makes a new one)
    on_event: Callable[[EngineEvent], None]

    def supervise(self, plan: LaunchPlan, gpus: list[Gpu], model_path: str
                  ) -> tuple[ProcessSupervisor | Fleet, LaunchPlan] | str:
        """The supervisor for ``plan`` (not started) and the plan the record names, or why not."""
        policy = Policy(stall_timeout_s=self.settings.stall_timeout_s)
        if (self.settings.replicas or 1) <= 1 and not self.settings.workers:
            build = self.builder(plan.model, model_path)
            return ProcessSupervisor(plan, lambda p, port: build(p, port, None), self.log_dir, self.on_event,
                                     policy, gpus), plan
        if importlib.util.find_spec("vllm_router") is None:
            return "a fleet needs vLLM's router: pip install vllm-router==0.1.17"
        fleet = plan_fleet(gpus, self.settings.overrides(), self.settings.replicas or 1, self.settings.workers or [],
                           self.settings.port)
        guard = self.guard()

        def build_router(workers: list[str]) -> EngineCommand:
            command = router_command(fleet, workers, self.key())
            return replace(command, argv=[*guard, *command.argv])

        replicas = self.builder(plan.model, model_path, member=True)
        return Fleet(fleet, replicas, build_router, self.log_dir, self.on_event, policy, gpus), fleet.router

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
