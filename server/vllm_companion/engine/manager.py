"""The local engine as the language server (and ``vllm-companion engine``) sees it.

``acquire`` attaches to the engine the registry records if it is alive, else plans, prepares the
model and starts one under a ``ProcessSupervisor``, wrapped in the guard (engine/guard.py) that
stops it when no user is left alive. While attached it follows the record (a restart moves the
engine to another port), adopts the engine if its supervising server died, and stops for good when
``vllm-companion engine stop`` asks. ``release`` leaves; the last user out stops the engine
unless ``keepAlive``. Each engine gets a random API key, kept only in the 0600 record and passed
to the engine through its environment (never its command line), so other local users cannot
use it; an engine that serves a team has one too, and sits on loopback behind the front, which
checks the team's key (``Fronted``, engine/fronted.py and engine/front.py). Where the plan serves
a next-edit model beside the completion model, the engine is two processes (``Paired``,
engine/paired.py) and ``next_edit`` is where the second one answers (from our supervisor, or the
record when attached). Processes are
signalled only through ``signals.signal_group`` (identity checked, a guard's) and ``signals.sweep``
(what a SIGKILLed guard left, found by its mark).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

from ..config import EngineSettings
from . import record as rec
from .command import engine_installed, resolve_model
from .launch import Launcher, LaunchRefused, engine_key, plan_for
from .models import ModelUnavailable
from .planning.diagnose import install_hint
from .planning.hardware import read_gpus
from .planning.plan import LaunchPlan, device_of
from .procs import ProcessId, alive
from .readiness import engine_ready
from .record import EngineRecord
from .registry import EngineRegistry
from .signals import signal_group, sweep
from .supervised import EngineEvent, EngineState, Extras, Supervised

log = logging.getLogger(__name__)
FOLLOW_S = 2.0
SWEEP_GRACE_S = 5.0  # what a SIGKILLed guard left: SIGTERM, then SIGKILL
STOPPED_BY_USER = "the engine was stopped (vllm-companion engine stop)"


class EngineManager:
    def __init__(
        self,
        settings: EngineSettings,
        on_event: Callable[[EngineEvent], None],
        on_endpoint: Callable[[str, str, str | None], None],
        registry: EngineRegistry | None = None,
    ) -> None:
        self.settings, self.on_event, self.on_endpoint = settings, on_event, on_endpoint
        self.registry = registry or EngineRegistry()
        self.supervisor: Supervised | None = None
        self.endpoint: str | None = None
        self.model: str | None = None
        self.next_edit: tuple[str, str] | None = None  # the next-edit process's (endpoint, served name), while ready
        self.plan: LaunchPlan | None = None
        self.device: str | None = None  # "cuda" | "cpu": our plan's, or the shared engine's record's
        self.stopped = asyncio.Event()  # set when a user stopped the engine from outside
        self._api_key = ""
        self._follow: asyncio.Task[None] | None = None
        self._fleet_seen: str | None = None  # the fleet's summary last shown (attached editors)

    @property
    def api_key(self) -> str:
        """The engine's key (clients send it as ``Authorization: Bearer``)."""
        return self._api_key

    # -- acquire / release ---------------------------------------------------------------------
    async def acquire(self) -> bool:
        """Attach or start; True once an engine is ready (events report the way there)."""
        me, key = self.registry.me, engine_key(self.settings)
        entry = self.registry.decide(lambda record: rec.entered(record, me, key, time.time()))
        attach = entry.decision  # made under the lock, on the record it changed
        stale = [] if attach else [g for g in entry.before.guards if g]
        if not attach:
            self._api_key = key
        for process in stale:  # a guard SIGKILLed with its supervisor: what it left holds the memory we need
            await asyncio.to_thread(sweep, process, SWEEP_GRACE_S)
        self._follow = asyncio.create_task(self._follow_record())
        return await (self._attach() if attach else self._start_own())

    async def release(self, stop: bool | None = None) -> None:
        if self._follow is not None:
            self._follow.cancel()
        leaving = self.registry.decide(lambda record: rec.departed(record, self.registry.me, stop))
        engine, should_stop = leaving.before.engine, leaving.decision
        if should_stop and self.supervisor is not None:
            await self.supervisor.stop()
        elif should_stop and engine:
            await asyncio.gather(*(stop_group(g) for g in (engine, leaving.before.next_edit) if g))
        elif self.supervisor is not None:
            log.info("engine left running for the other editors using it")

    def release_sync(self) -> None:
        """Last-chance bookkeeping at exit (a signal, or the editor vanished without shutdown)."""
        leaving = self.registry.decide(lambda record: rec.departed(record, self.registry.me, None))
        if leaving.before.engine is not None and leaving.decision:
            for guard in (leaving.before.engine, leaving.before.next_edit):
                signal_group(guard, signal.SIGTERM)

    # -- starting our own ----------------------------------------------------------------------
    async def _start_own(self) -> bool:
        try:
            self.supervisor = await self._launch()
        except (LaunchRefused, ModelUnavailable) as exc:
            self._fail(str(exc))
            return False
        if line := self.supervisor.describe():
            self._event(EngineState.STARTING, line)
        await self.supervisor.start()
        return await self.supervisor.wait_ready(self.settings.ready_timeout_s)

    async def _launch(self) -> Supervised:
        """Plan, prepare the model, build the supervisor (not started); raises with why not."""
        gpus = read_gpus()
        self.plan = plan_for(self.settings, gpus)
        self.device = self.plan.device
        self._event(EngineState.STARTING, f"plan: {self.plan.describe()} ({self.plan.reason})")
        model_path = await asyncio.to_thread(resolve_model, self.plan)
        if self.settings.command is None and not engine_installed(self.plan, self.settings.python):
            raise LaunchRefused(f"the engine is not installed: {install_hint(self.plan)}")
        launcher = Launcher(self.settings, self.registry.path, self.registry.dir / "logs", lambda: self._api_key,
                            self._supervisor_event)
        supervisor, self.plan = launcher.supervise(self.plan, gpus, model_path)
        return supervisor

    def _supervisor_event(self, event: EngineEvent) -> None:
        sup = self.supervisor
        if sup is not None:
            self.registry.change(lambda record: self._recorded(record, event, sup))
        if event.state is EngineState.READY and event.endpoint:
            extras = sup.extras() if sup is not None else Extras()
            self._use(event.endpoint, event.plan.served_name, beside(extras.next_edit_endpoint, extras.next_edit_model))
        self.on_event(event)

    def _recorded(self, record: EngineRecord, event: EngineEvent, sup: Supervised) -> EngineRecord:
        """The record after ``event`` of our engine (left alone when it is no longer ours)."""
        if not record.owned_by(self.registry.me):
            return record
        if event.state in (EngineState.FAILED, EngineState.STOPPED):
            return rec.EMPTY
        moved = rec.progressed(record, ProcessId.of(sup.pid) if sup.pid else None, sup.extras(), time.time())
        if event.state is EngineState.READY and event.endpoint:
            return rec.served(moved, sup.port, event.endpoint, event.plan.served_name, str(sup.log_path),
                              self.settings.keep_alive, event.plan.describe())
        return moved  # starting, restarting, unhealthy: the record stays ours while we work on it

    # -- attaching -----------------------------------------------------------------------------
    async def _attach(self) -> bool:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        self._event(EngineState.STARTING, "attaching to the engine another editor started")
        while time.monotonic() < deadline:
            record = self.registry.read()
            endpoint, self._api_key = record.endpoint, record.api_key
            if endpoint and record.state == "ready" and await engine_ready(endpoint, self._api_key):
                self.device = device_of(record.plan)
                self._use(endpoint, str(record.model), beside(record.next_edit_endpoint, record.next_edit_model))
                self._event(EngineState.READY, f"attached: {record.model} at {endpoint}")
                return True
            if record.state != "starting" and not alive(record.engine):
                return await self._adopt()
            await asyncio.sleep(0.5)
        self._fail("timed out waiting for the shared engine")
        return False

    async def _follow_record(self) -> None:
        """Follow restarts (new port) of a shared engine; adopt it when its supervisor is gone;
        stop when a user asked (``vllm-companion engine stop``)."""
        while not self.stopped.is_set():
            await asyncio.sleep(FOLLOW_S)
            record = self.registry.read()
            if record.stop_requested or (self.supervisor is not None and not record.kept):
                await self._stopped_by_user()  # asked to stop, or our record was deleted: nobody finds us
            elif record.state == "starting" and record.owned_by(self.registry.me):
                # ours, still preparing (a model conversion took >60 s on a busy machine)
                self.registry.change(lambda r: rec.beaten(r, self.registry.me, time.time()))
            elif self.supervisor is None:
                await self._follow_shared(record)

    async def _follow_shared(self, record: EngineRecord) -> None:
        endpoint, fleet = record.endpoint, record.fleet
        next_edit = beside(record.next_edit_endpoint, record.next_edit_model)
        if endpoint is not None and endpoint != self.endpoint and record.state == "ready":
            self._api_key, self.device = record.api_key, device_of(record.plan)
            self._use(endpoint, str(record.model), next_edit)
            self._event(EngineState.READY, f"engine moved to {endpoint}")
        elif endpoint is not None and next_edit != self.next_edit and record.state == "ready":
            self._use(endpoint, str(record.model), next_edit)
            self._event(EngineState.READY, f"next-edit model: {next_edit[1] if next_edit else 'none (generic prompt)'}")
        elif fleet is not None and fleet != self._fleet_seen and record.state == "ready":
            self._fleet_seen = fleet
            self._event(EngineState.READY, f"fleet: {fleet[:300]}")
        elif not alive(record.supervisor) and not (endpoint and await engine_ready(endpoint, self._api_key)):
            await self._adopt()

    async def _stopped_by_user(self) -> None:
        self.stopped.set()
        if self.supervisor is not None:
            await self.supervisor.stop()
            self.registry.change(lambda record: rec.EMPTY)
        self._event(EngineState.STOPPED, STOPPED_BY_USER)

    async def _adopt(self) -> bool:
        me, key = self.registry.me, engine_key(self.settings)
        taking = self.registry.decide(lambda record: rec.adopted(record, me, key, time.time()))
        if not taking.decision:
            return False
        before, self._api_key = taking.before, key
        signal_group(before.front, signal.SIGTERM)  # it holds the team's port
        # its guards go last, after their sessions: that memory is free for ours
        await asyncio.gather(*(stop_group(g) for g in (before.engine, before.next_edit) if g))
        self._event(EngineState.RESTARTING, "the engine's supervisor is gone: taking over")
        return await self._start_own()

    # -- helpers -------------------------------------------------------------------------------
    def _use(self, endpoint: str, model: str, next_edit: tuple[str, str] | None) -> None:
        if (endpoint, model, next_edit) != (self.endpoint, self.model, self.next_edit):
            self.endpoint, self.model, self.next_edit = endpoint, model, next_edit
            self.on_endpoint(endpoint, model, self._api_key or None)

    def _event(self, state: EngineState, message: str) -> None:
        plan = self.plan or LaunchPlan("vllm", "cpu", "?", "?")
        self.on_event(EngineEvent(state, message, plan, self.endpoint))

    def _fail(self, message: str) -> None:
        self.registry.change(lambda record: rec.cleared_if(record, record.owned_by(self.registry.me)))
        self._event(EngineState.FAILED, message)


def beside(endpoint: str | None, model: str | None) -> tuple[str, str] | None:
    """The next-edit process as (endpoint, served name), or None when none is ready."""
    return (endpoint, model) if endpoint and model else None


async def stop_group(engine: object, grace_s: float = 10.0) -> bool:
    """SIGTERM the recorded engine's group (identity checked), SIGKILL after ``grace_s``."""
    if not signal_group(engine, signal.SIGTERM):
        await asyncio.to_thread(sweep, engine, grace_s)  # its guard is gone: what it left, if anything
        return False
    deadline = time.monotonic() + grace_s
    while alive(engine) and time.monotonic() < deadline:  # noqa: ASYNC110 - not our child: no wait() to await
        await asyncio.sleep(0.1)
    signal_group(engine, signal.SIGKILL)
    return True
