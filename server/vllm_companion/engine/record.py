"""The registry record (engine/registry.py keeps it on disk): a typed, frozen record, its parser and
its writer, and every change made to it, as pure functions (issue 21, point 4: it was an untyped
dict that three modules wrote as they liked).

Nothing read from disk is trusted (docs/security.md): ``parse`` takes what ``json.loads`` gave and
keeps only well-typed fields, strings cut to ``MAX_TEXT``, at most ``MAX_OWNERS`` owners, and
processes as identities (``procs.ProcessId``: boot, pid, start time), never bare PIDs; then it
drops what a record may not say: dead owners, an endpoint (the completion engine's, or the
next-edit process's) beyond loopback, a "starting" record
whose supervisor is gone or silent for ``STARTING_EXPIRE_S``. ``to_json`` writes the same keys
the file has always had (tests, ``engine status`` and older servers read them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ..loopback import is_loopback
from .procs import ProcessId, alive, is_guard
from .supervised import Extras

STARTING_EXPIRE_S = 60.0  # a starting supervisor beats every few seconds while it lives
MAX_OWNERS = 64
MAX_TEXT = 4096  # any one string of the record (a fleet's summary is the longest, ~300 bytes)
MAX_NAME = 256  # the next-edit model's served name (backend/listing.py's MAX_ID_CHARS)
STATES = ("starting", "ready", "stopping")
T = TypeVar("T")


@dataclass(frozen=True)
class EngineRecord:
    state: str = ""  # "" (no engine), or one of STATES
    supervisor: ProcessId | None = None  # the language server (or service) that supervises it
    engine: ProcessId | None = None  # the engine's guard, leader of its process group
    front: ProcessId | None = None  # a team's front, under a guard of its own
    owners: tuple[ProcessId, ...] = ()  # the servers that use it
    beat: float | None = None  # when the supervisor last said it is alive (time.time())
    api_key: str = ""  # the engine's own key: the record is 0600
    endpoint: str | None = None  # always on loopback
    port: int | None = None
    model: str | None = None
    log: str | None = None
    keep_alive: bool = False
    plan: str | None = None
    fleet: str | None = None  # a fleet's one-line summary
    front_url: str | None = None
    stop_requested: bool = False
    next_edit: ProcessId | None = None  # the next-edit process's guard (a second vLLM, engine/paired.py)
    next_edit_endpoint: str | None = None  # always on loopback; set while that process is ready
    next_edit_model: str | None = None  # its served name

    @property
    def guards(self) -> tuple[ProcessId | None, ...]:
        """Every guard the record names (engine, team front, next-edit process): what a stop,
        a sweep or an adoption must end."""
        return self.engine, self.front, self.next_edit

    @property
    def kept(self) -> bool:
        """Is there anything to keep on disk? (else the file is removed)"""
        return self.engine is not None or self.state in ("starting", "stopping")

    def attachable(self) -> bool:
        """A live engine, or one being started: a new user attaches instead of starting its own."""
        return is_guard(self.engine) or self.state == "starting"

    def owned_by(self, me: ProcessId) -> bool:
        return self.supervisor == me


EMPTY = EngineRecord()


@dataclass(frozen=True)
class Decided(Generic[T]):
    """A change's new record and what it decided under the registry's lock (attach or start, stop
    or leave): the caller acts on the decision after the lock, never on a second read."""

    record: EngineRecord
    decision: T


@dataclass(frozen=True)
class Change(Generic[T]):
    """What ``EngineRegistry.decide`` did: the record before and after, and the step's decision."""

    before: EngineRecord
    after: EngineRecord
    decision: T


# -- reading -------------------------------------------------------------------------------------
def _text(raw: Any) -> str | None:
    return raw[:MAX_TEXT] if isinstance(raw, str) else None


def _name(raw: Any) -> str | None:
    """A served model's name: printable, at most ``MAX_NAME`` (it reaches the logs, the editor's
    status and every next-edit request; tests/adversarial/test_next_edit_model.py)."""
    return raw if isinstance(raw, str) and 0 < len(raw) <= MAX_NAME and raw.isprintable() else None


def _number(raw: Any) -> float | None:
    return float(raw) if type(raw) in (int, float) else None


def parse(data: Any, now: float) -> EngineRecord:
    """What a record read from disk may say (module doc); ``EMPTY`` for anything not an object."""
    if not isinstance(data, dict):
        return EMPTY
    owners = data.get("owners")
    kept = tuple(o for o in map(ProcessId.from_json, owners[:MAX_OWNERS] if isinstance(owners, list) else [])
                 if o is not None and o.alive())
    port = data.get("port")
    record = EngineRecord(
        state=data["state"] if data.get("state") in STATES else "",
        supervisor=ProcessId.from_json(data.get("supervisor")), engine=ProcessId.from_json(data.get("engine")),
        front=ProcessId.from_json(data.get("front")), owners=kept, beat=_number(data.get("beat")),
        api_key=_text(data.get("apiKey")) or "", endpoint=_text(data.get("endpoint")),
        port=port if type(port) is int and 0 < port < 65536 else None, model=_name(data.get("model")),
        log=_text(data.get("log")), keep_alive=data.get("keepAlive") is True, plan=_text(data.get("plan")),
        fleet=_text(data.get("fleet")), front_url=_text(data.get("frontUrl")),
        stop_requested=data.get("stopRequested") is True, next_edit=ProcessId.from_json(data.get("nextEdit")),
        next_edit_endpoint=_text(data.get("nextEditEndpoint")), next_edit_model=_name(data.get("nextEditModel")))
    if any(key in data and not is_loopback(data[key]) for key in ("endpoint", "nextEditEndpoint")):
        return EngineRecord(owners=kept)
    fresh = record.beat is not None and 0 <= now - record.beat < STARTING_EXPIRE_S
    if record.state == "starting" and not (fresh and alive(record.supervisor)):
        return EngineRecord(owners=kept)
    return record


def to_json(record: EngineRecord) -> dict[str, Any]:
    """The file's form (camelCase keys, identities as objects); fields not set are left out."""
    idents = {k: v.to_json() for k, v in (("supervisor", record.supervisor), ("engine", record.engine),
                                          ("front", record.front), ("nextEdit", record.next_edit)) if v is not None}
    values = {"state": record.state or None, "beat": record.beat, "apiKey": record.api_key or None,
              "endpoint": record.endpoint, "port": record.port, "model": record.model, "log": record.log,
              "keepAlive": record.keep_alive or None, "plan": record.plan, "fleet": record.fleet,
              "frontUrl": record.front_url, "stopRequested": record.stop_requested or None,
              "nextEditEndpoint": record.next_edit_endpoint, "nextEditModel": record.next_edit_model}
    return {**idents, "owners": [o.to_json() for o in record.owners],
            **{k: v for k, v in values.items() if v is not None}}


# -- changes (each a pure function: engine/registry.py applies one under its lock and writes) ------
def joined(record: EngineRecord, me: ProcessId) -> EngineRecord:
    return replace(record, owners=(*left(record, me).owners, me))


def left(record: EngineRecord, me: ProcessId) -> EngineRecord:
    return replace(record, owners=tuple(o for o in record.owners if o != me))


def claimed(record: EngineRecord, me: ProcessId, key: str, now: float, keep_owners: bool) -> EngineRecord:
    """``me`` starts (or takes over) the engine: a "starting" record with a fresh key."""
    base = EngineRecord(state="starting", supervisor=me, beat=now, api_key=key,
                        owners=record.owners if keep_owners else ())
    return joined(base, me)


def beaten(record: EngineRecord, me: ProcessId, now: float) -> EngineRecord:
    """While ``me`` starts the engine, it says it is alive (a silent "starting" record expires)."""
    return replace(record, beat=now) if record.owned_by(me) else record


def progressed(record: EngineRecord, engine: ProcessId | None, extras: Extras, now: float) -> EngineRecord:
    """The supervised engine moved (starting, restarting, unhealthy; or its next-edit process did):
    the record stays ours; the next-edit process's fields are what ``extras`` says now."""
    front = ProcessId.of(extras.front_pid) if extras.front_pid else None
    next_edit = ProcessId.of(extras.next_edit_pid) if extras.next_edit_pid else None
    return replace(record, beat=now, engine=engine, state="starting", fleet=extras.fleet or record.fleet,
                   front=front if extras.front_url else record.front, front_url=extras.front_url or record.front_url,
                   next_edit=next_edit, next_edit_endpoint=extras.next_edit_endpoint,
                   next_edit_model=extras.next_edit_model if extras.next_edit_endpoint else None)


def served(record: EngineRecord, port: int | None, endpoint: str, model: str, log: str, keep_alive: bool,
           plan: str) -> EngineRecord:
    """The engine is ready: where editors on this host reach it."""
    return replace(record, state="ready", port=port, endpoint=endpoint, model=model, log=log, keep_alive=keep_alive,
                   plan=plan)


def stopping(record: EngineRecord) -> EngineRecord:
    """``engine stop`` asks: the supervisor and the guards stop the engine."""
    return replace(record, stop_requested=True, state="stopping")


def cleared_if(record: EngineRecord, cleared: bool) -> EngineRecord:
    return EMPTY if cleared else record


def entered(record: EngineRecord, me: ProcessId, key: str, now: float) -> Decided[bool]:
    """``me`` arrives: attach (True) to a live engine or one being started, else claim the record
    to start its own with ``key``."""
    attach = record.attachable()
    return Decided(joined(record, me) if attach else claimed(record, me, key, now, False), attach)


def adopted(record: EngineRecord, me: ProcessId, key: str, now: float) -> Decided[bool]:
    """``me`` takes the engine over (True) when its supervisor is gone (or is ``me``), keeping its
    users; a live supervisor of another server keeps it (False)."""
    if alive(record.supervisor) and not record.owned_by(me):
        return Decided(record, False)
    return Decided(claimed(record, me, key, now, keep_owners=True), True)


def departed(record: EngineRecord, me: ProcessId, stop: bool | None) -> Decided[bool]:
    """``me`` leaves; the engine stops (True, and the record is cleared) when ``stop`` says so, or,
    ``stop`` None, when no user is left and it is not kept alive."""
    after = left(record, me)
    stopping_now = stop if stop is not None else not after.owners and not after.keep_alive
    return Decided(cleared_if(after, stopping_now), stopping_now)
