"""The local engine as the language server (and ``vllm-companion engine``) sees it.

``acquire`` attaches to the engine the registry records if it is alive, else plans, prepares the
model and starts one under a ``ProcessSupervisor``, wrapped in the guard (engine/guard.py) that
stops it when no user is left alive. While attached it follows the record (a restart moves the
engine to another port), adopts the engine if its supervising server died, and stops for good when
``vllm-companion engine stop`` asks. ``release`` leaves; the last user out stops the engine
unless ``keepAlive``. Each engine gets a random API key, kept only in the 0600 record and passed
to the engine through its environment (never its command line), so other local users cannot
use it; an engine that serves a team has one too, and sits on loopback behind the front, which
checks the team's key (``Fronted``, engine/launch.py and engine/front.py). Processes are
signalled only through ``procs.signal_group`` (identity checked, a guard's) and ``procs.sweep``
(what a SIGKILLed guard left, found by its mark).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

import httpx2 as httpx

from ..config import EngineSettings
from .command import engine_installed, resolve_model
from .diagnose import install_hint
from .fleet import Fleet
from .hardware import read_gpus
from .launch import Fronted, Launcher, engine_key, plan_for
from .models import ModelUnavailable
from .plan import LaunchPlan
from .procs import ProcessId, alive, is_guard, signal_group, sweep
from .registry import EngineRegistry
from .supervisor import EngineEvent, EngineState, ProcessSupervisor

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
        self.supervisor: ProcessSupervisor | Fleet | Fronted | None = None
        self.endpoint: str | None = None
        self.model: str | None = None
        self.plan: LaunchPlan | None = None
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
        with self.registry.locked() as record:
            attach = is_guard(record.get("engine")) or record.get("state") == "starting"
            stale = [] if attach else [record.get("engine"), record.get("front")]
            if not attach:
                record.clear()
                self._api_key = engine_key(self.settings)
                record.update(state="starting", supervisor=self.registry.me.to_json(), beat=time.time(),
                              apiKey=self._api_key)
            self.registry.add_owner(record)
        for process in stale:  # a guard SIGKILLed with its supervisor: what it left holds the memory we need
            await asyncio.to_thread(sweep, process, SWEEP_GRACE_S)
        self._follow = asyncio.create_task(self._follow_record())
        return await (self._attach() if attach else self._start_own())

    async def release(self, stop: bool | None = None) -> None:
        if self._follow is not None:
            self._follow.cancel()
        with self.registry.locked() as record:
            self.registry.drop_owner(record)
            last = not record["owners"]
            should_stop = stop if stop is not None else (last and not record.get("keepAlive"))
            engine = record.get("engine")
            if should_stop:
                record.clear()
        if should_stop and self.supervisor is not None:
            await self.supervisor.stop()
        elif should_stop and engine:
            await stop_group(engine)
        elif self.supervisor is not None:
            log.info("engine left running for the other editors using it")

    def release_sync(self) -> None:
        """Last-chance bookkeeping at exit (a signal, or the editor vanished without shutdown)."""
        with self.registry.locked() as record:
            self.registry.drop_owner(record)
            if record["owners"] or record.get("keepAlive"):
                return
            engine = record.get("engine")
            record.clear()
        signal_group(engine, signal.SIGTERM)

    # -- starting our own ----------------------------------------------------------------------
    async def _start_own(self) -> bool:
        gpus = read_gpus()
        planned = plan_for(self.settings, gpus)
        if isinstance(planned, str):
            self._fail(planned)
            return False
        self.plan = planned
        self._event(EngineState.STARTING, f"plan: {self.plan.describe()} ({self.plan.reason})")
        try:
            model_path = await asyncio.to_thread(resolve_model, self.plan)
        except ModelUnavailable as exc:
            self._fail(str(exc))
            return False
        if self.settings.command is None and not engine_installed(self.plan, self.settings.python):
            self._fail(f"the engine is not installed: {install_hint(self.plan)}")
            return False
        launcher = Launcher(self.settings, self.registry.path, self.registry.dir / "logs", lambda: self._api_key,
                            self._supervisor_event)
        launched = launcher.supervise(self.plan, gpus, model_path)
        if isinstance(launched, str):
            self._fail(launched)
            return False
        self.supervisor, self.plan = launched
        if isinstance(self.supervisor, Fleet):
            self._event(EngineState.STARTING, f"fleet: {self.supervisor.fleet.describe()}")
        await self.supervisor.start()
        return await self.supervisor.wait_ready(self.settings.ready_timeout_s)

    def _supervisor_event(self, event: EngineEvent) -> None:
        sup = self.supervisor
        with self.registry.locked() as record:
            if sup is not None and self.registry.is_mine(record.get("supervisor")):
                self._record_event(record, event, sup)
        if event.state is EngineState.READY and event.endpoint:
            self._use(event.endpoint, event.plan.served_name)
        self.on_event(event)

    def _record_event(self, record: dict[str, object], event: EngineEvent,
                      sup: ProcessSupervisor | Fleet | Fronted) -> None:
        engine = ProcessId.of(sup.pid) if sup.pid else None
        record.update(beat=time.time(), engine=engine.to_json() if engine else None)
        if isinstance(sup, Fleet):
            record["fleet"] = sup.summary()  # what the attached editors' status shows
        if isinstance(sup, Fronted):
            record.update(sup.recorded())  # the front: engine stop waits for it, engine start prints its URL
        if event.state is EngineState.READY and event.endpoint:
            record.update(state="ready", port=sup.port, endpoint=event.endpoint, model=event.plan.served_name,
                          log=str(sup.log_path), keepAlive=self.settings.keep_alive, plan=event.plan.describe())
        elif event.state in (EngineState.FAILED, EngineState.STOPPED):
            record.clear()
        else:  # starting, restarting, unhealthy: the record stays ours while we work on it
            record["state"] = "starting"

    # -- attaching -----------------------------------------------------------------------------
    async def _attach(self) -> bool:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        self._event(EngineState.STARTING, "attaching to the engine another editor started")
        while time.monotonic() < deadline:
            record = self.registry.read()
            endpoint = record.get("endpoint")
            self._api_key = str(record.get("apiKey") or "")
            if endpoint and record.get("state") == "ready" and await _ready(endpoint, self._api_key):
                self._use(endpoint, str(record.get("model")))
                self._event(EngineState.READY, f"attached: {record.get('model')} at {endpoint}")
                return True
            if record.get("state") != "starting" and not alive(record.get("engine")):
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
            if record.get("stopRequested") or (self.supervisor is not None and not record):
                await self._stopped_by_user()  # asked to stop, or our record was deleted: nobody finds us
            elif record.get("state") == "starting" and self.registry.is_mine(record.get("supervisor")):
                self._beat()  # ours, still preparing (a model conversion took >60 s on a busy machine)
            elif self.supervisor is None:
                await self._follow_shared(record)

    def _beat(self) -> None:
        """While we start the engine, say we are alive (a silent "starting" record expires)."""
        with self.registry.locked() as record:
            if self.registry.is_mine(record.get("supervisor")):
                record["beat"] = time.time()

    async def _follow_shared(self, record: dict[str, object]) -> None:
        endpoint, fleet = record.get("endpoint"), record.get("fleet")
        if isinstance(endpoint, str) and endpoint != self.endpoint and record.get("state") == "ready":
            self._api_key = str(record.get("apiKey") or "")
            self._use(endpoint, str(record.get("model")))
            self._event(EngineState.READY, f"engine moved to {endpoint}")
        elif isinstance(fleet, str) and fleet != self._fleet_seen and record.get("state") == "ready":
            self._fleet_seen = fleet
            self._event(EngineState.READY, f"fleet: {fleet[:300]}")
        elif not alive(record.get("supervisor")) and not (
            isinstance(endpoint, str) and await _ready(endpoint, self._api_key)
        ):
            await self._adopt()

    async def _stopped_by_user(self) -> None:
        self.stopped.set()
        if self.supervisor is not None:
            await self.supervisor.stop()
            with self.registry.locked() as record:
                record.clear()
        self._event(EngineState.STOPPED, STOPPED_BY_USER)

    async def _adopt(self) -> bool:
        with self.registry.locked() as record:
            supervisor = record.get("supervisor")
            if alive(supervisor) and not self.registry.is_mine(supervisor):
                return False
            engine, front, owners = record.get("engine"), record.get("front"), record.get("owners", [])
            record.clear()
            self._api_key = engine_key(self.settings)
            record.update(state="starting", supervisor=self.registry.me.to_json(), owners=owners,
                          beat=time.time(), apiKey=self._api_key)
            self.registry.add_owner(record)
        signal_group(front, signal.SIGTERM)  # it holds the team's port
        await stop_group(engine)  # its guard goes last, after its session: that memory is free for ours
        self._event(EngineState.RESTARTING, "the engine's supervisor is gone: taking over")
        return await self._start_own()

    # -- helpers -------------------------------------------------------------------------------
    def _use(self, endpoint: str, model: str) -> None:
        if (endpoint, model) != (self.endpoint, self.model):
            self.endpoint, self.model = endpoint, model
            self.on_endpoint(endpoint, model, self._api_key or None)

    def _event(self, state: EngineState, message: str) -> None:
        plan = self.plan or LaunchPlan("vllm", "cpu", "?", "?")
        self.on_event(EngineEvent(state, message, plan, self.endpoint))

    def _fail(self, message: str) -> None:
        with self.registry.locked() as record:
            if self.registry.is_mine(record.get("supervisor")):
                record.clear()
        self._event(EngineState.FAILED, message)


async def _ready(endpoint: str, api_key: str = "") -> bool:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=2.0, headers=headers) as http:
            resp = await http.get(f"{endpoint}/models")
            return resp.status_code == 200
    except httpx.HTTPError:
        return False


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
