"""The local engine as the language server (and ``vllm-companion engine``) sees it.

``acquire`` attaches to the engine the registry records if it is alive, else plans, prepares the
model and starts one under a ``ProcessSupervisor``. While attached it follows the record (a
restart moves the engine to another port) and adopts the engine if its supervising server died.
``release`` leaves; the last user out stops the engine unless ``keepAlive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

import httpx2 as httpx

from ..config import EngineSettings
from .command import EngineCommand, build_command, resolve_model
from .diagnose import install_hint
from .hardware import read_gpus
from .models import ModelUnavailable
from .plan import LaunchPlan, plan_launch
from .registry import EngineRegistry, alive
from .supervisor import EngineEvent, EngineState, Policy, ProcessSupervisor

log = logging.getLogger(__name__)
FOLLOW_S = 2.0


class EngineManager:
    def __init__(
        self,
        settings: EngineSettings,
        on_event: Callable[[EngineEvent], None],
        on_endpoint: Callable[[str, str], None],
        registry: EngineRegistry | None = None,
    ) -> None:
        self.settings, self.on_event, self.on_endpoint = settings, on_event, on_endpoint
        self.registry = registry or EngineRegistry()
        self.supervisor: ProcessSupervisor | None = None
        self.endpoint: str | None = None
        self.model: str | None = None
        self.plan: LaunchPlan | None = None
        self._follow: asyncio.Task[None] | None = None
        self.pid = os.getpid()

    # -- acquire / release ---------------------------------------------------------------------
    async def acquire(self) -> bool:
        """Attach or start; True once an engine is ready (events report the way there)."""
        with self.registry.locked() as record:
            attach = alive(record.get("pid")) or (
                record.get("state") == "starting" and alive(record.get("supervisor"))
            )
            record["owners"] = sorted({*record.get("owners", []), self.pid})
            if not attach:
                record.clear()
                record.update(state="starting", supervisor=self.pid, owners=[self.pid], started=time.time())
        if attach:
            ok = await self._attach()
        else:
            ok = await self._start_own()
        self._follow = asyncio.create_task(self._follow_record())
        return ok

    async def release(self, stop: bool | None = None) -> None:
        if self._follow is not None:
            self._follow.cancel()
        with self.registry.locked() as record:
            record["owners"] = [p for p in record.get("owners", []) if p != self.pid]
            last = not record["owners"]
            should_stop = stop if stop is not None else (last and not record.get("keepAlive"))
            if should_stop:
                pid = record.get("pid")
                record.clear()
        if should_stop:
            if self.supervisor is not None:
                await self.supervisor.stop()
            elif pid:
                await _stop_group(pid)
        elif self.supervisor is not None:
            log.info("engine left running for the other editors using it")

    # -- starting our own ----------------------------------------------------------------------
    async def _start_own(self) -> bool:
        self.plan = plan_launch(read_gpus(), self.settings.overrides())
        self._event(EngineState.STARTING, f"plan: {self.plan.describe()} ({self.plan.reason})")
        try:
            model_path = await asyncio.to_thread(resolve_model, self.plan)
        except ModelUnavailable as exc:
            self._fail(str(exc))
            return False
        if self.settings.command is None and not _engine_installed(self.plan, self.settings.python):
            self._fail(f"the engine is not installed: {install_hint(self.plan)}")
            return False
        policy = Policy(stall_timeout_s=self.settings.stall_timeout_s)
        self.supervisor = ProcessSupervisor(
            self.plan, self._builder(model_path), self.registry.dir / "logs", self._supervisor_event, policy
        )
        await self.supervisor.start()
        return await self.supervisor.wait_ready(self.settings.ready_timeout_s)

    def _builder(self, model_path: str) -> Callable[[LaunchPlan, int], EngineCommand]:
        python = self.settings.python or sys.executable

        def build(plan: LaunchPlan, port: int) -> EngineCommand:
            path = model_path if plan.model == (self.plan.model if self.plan else plan.model) else plan.model
            return build_command(plan, port, path, python, self.settings.command)

        return build

    def _supervisor_event(self, event: EngineEvent) -> None:
        sup = self.supervisor
        if event.state is EngineState.READY and sup is not None and event.endpoint:
            with self.registry.locked() as record:
                record.update(state="ready", pid=sup.pid, port=sup.port, endpoint=event.endpoint,
                              model=event.plan.served_name, supervisor=self.pid, log=str(sup.log_path),
                              keepAlive=self.settings.keep_alive, plan=event.plan.describe())
                record["owners"] = sorted({*record.get("owners", []), self.pid})
            self._use(event.endpoint, event.plan.served_name)
        elif event.state is EngineState.FAILED:
            with self.registry.locked() as record:
                record.clear()
        self.on_event(event)

    # -- attaching -----------------------------------------------------------------------------
    async def _attach(self) -> bool:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        self._event(EngineState.STARTING, "attaching to the engine another editor started")
        while time.monotonic() < deadline:
            record = self.registry.read()
            endpoint = record.get("endpoint")
            if endpoint and record.get("state") == "ready" and await _ready(endpoint):
                self._use(endpoint, str(record.get("model")))
                self._event(EngineState.READY, f"attached: {record.get('model')} at {endpoint}")
                return True
            if not record or not (alive(record.get("pid")) or alive(record.get("supervisor"))):
                return await self._adopt()
            await asyncio.sleep(0.5)
        self._fail("timed out waiting for the shared engine")
        return False

    async def _follow_record(self) -> None:
        """Follow restarts (new port) of a shared engine; adopt it when its supervisor is gone."""
        while True:
            await asyncio.sleep(FOLLOW_S)
            if self.supervisor is not None:
                continue
            record = self.registry.read()
            endpoint = record.get("endpoint")
            if endpoint and endpoint != self.endpoint and record.get("state") == "ready":
                self._use(endpoint, str(record.get("model")))
                self._event(EngineState.READY, f"engine moved to {endpoint}")
            elif not alive(record.get("supervisor")) and not (endpoint and await _ready(endpoint)):
                await self._adopt()

    async def _adopt(self) -> bool:
        with self.registry.locked() as record:
            if alive(record.get("supervisor")) and record.get("supervisor") != self.pid:
                return False
            if pid := record.get("pid"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
            owners = record.get("owners", [])
            record.clear()
            record.update(state="starting", supervisor=self.pid, owners=sorted({*owners, self.pid}))
        self._event(EngineState.RESTARTING, "the engine's supervisor is gone: taking over")
        return await self._start_own()

    # -- helpers -------------------------------------------------------------------------------
    def _use(self, endpoint: str, model: str) -> None:
        if (endpoint, model) != (self.endpoint, self.model):
            self.endpoint, self.model = endpoint, model
            self.on_endpoint(endpoint, model)

    def _event(self, state: EngineState, message: str) -> None:
        plan = self.plan or LaunchPlan("vllm", "cpu", "?", "?")
        self.on_event(EngineEvent(state, message, plan, self.endpoint))

    def _fail(self, message: str) -> None:
        with self.registry.locked() as record:
            if record.get("supervisor") == self.pid:
                record.clear()
        self._event(EngineState.FAILED, message)

    def release_sync(self) -> None:
        """Last-chance bookkeeping at interpreter exit (the editor vanished without shutdown)."""
        with self.registry.locked() as record:
            record["owners"] = [p for p in record.get("owners", []) if p != self.pid]
            if record["owners"] or record.get("keepAlive"):
                return
            pid = record.get("pid")
            record.clear()
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)

    def status(self) -> dict[str, object]:
        record = self.registry.read()
        sup = self.supervisor
        return {
            "state": sup.state.value if sup else record.get("state", "stopped"),
            "endpoint": self.endpoint or record.get("endpoint"),
            "model": self.model or record.get("model"),
            "plan": (sup.plan.describe() if sup else record.get("plan")),
            "lastError": sup.last_error if sup else "",
            "restarts": sup.restarts if sup else 0,
            "owners": record.get("owners", []),
            "log": str(sup.log_path) if sup and sup.log_path else record.get("log"),
        }


async def _ready(endpoint: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            resp = await http.get(f"{endpoint}/models")
            return resp.status_code == 200
    except httpx.HTTPError:
        return False


async def _stop_group(pid: int, grace_s: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:  # noqa: ASYNC110 - not our child: no wait() to await
        await asyncio.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _engine_installed(plan: LaunchPlan, python: str | None) -> bool:
    """Is the engine's module importable by the interpreter that will run it?"""
    module = "llama_cpp" if plan.engine == "llamacpp" else "vllm"
    if python is None or python == sys.executable:
        import importlib.util

        return importlib.util.find_spec(module) is not None
    import subprocess

    probe = [python, "-c", f"import importlib.util,sys; sys.exit(importlib.util.find_spec('{module}') is None)"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
