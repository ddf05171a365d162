"""The endpoint's health, in one owner: what it serves (discovery), whether it is worth asking
now (availability), when it answers again (recovery), and what the status says about it.
Completion, chat and the model picker all ask here (issue 21, point 2).

- Discovery (served.py, a part of this object): the served model (and every listed model's
  context length) and its prompt family with the FIM-token check, learned once per connection
  and kept there only; a probe that fails is reported here (``_probe_failed``).
- Availability (``refusal``): a launched engine that is not ready, or an endpoint known down or
  asked to wait (availability.py), is not asked: completion answers ``null`` and chat a clear
  error at once, instead of each waiting its own timeout on it; ``model`` refuses the same way,
  so next-edit (which asks only that) honours it too. In launch mode nothing is asked before the
  engine's endpoint is known (``Connection.engine_pending``).
- Recovery: while the endpoint is known down, ``watch_recovery`` probes it in the background (at
  the end of each back-off) and clears the state as soon as it answers, so the status recovers
  without anybody typing; ``watch`` checks an attached endpoint every ``backend.healthIntervalS``.
- Outcomes (``outcome``): how each request to the backend ended, for the availability and status.
- The next-edit process (``next_edit_backend``): where a launched plan serves a next-edit model
  beside the completion model (engine/paired.py), its backend, kept while the binding says it is
  ready. Nothing is learned about it: its served name comes with it, and its failures are the
  next-edit request's own (the record drops it when it stops; next edits go to the main model).
- Shutdown (``close``): every probe and the recovery are cancelled and awaited, then every
  backend closes: the served ones, and the replaced ones whose close ``use`` had started, awaited
  and never cancelled (a close cancelled before it ran left the old client open: review finding).
  Nothing starts after it (probes were left pending at exit, issue 21); a backend handed over
  after it is closed at once, not served (``closed``: ``Services.reconnect`` then does nothing).
  The app calls it once (``Services.aclose``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ..prompts import Family
from ..status import ServerStatus
from .availability import ENDPOINT_KINDS, Availability
from .client import Backend, ModelInfo
from .connection import Connection
from .errors import BackendError, ErrorKind
from .served import Discovery

log = logging.getLogger(__name__)
NOT_READY = "the local engine is not ready yet"


class Engine(Protocol):
    """What the health reads of the engine binding (engine/binding.py; backend/ does not import
    engine/): whether this server launched the engine, and whether it is ready."""

    launch: bool

    @property
    def ready(self) -> bool: ...


class Health:
    def __init__(self, backend: Backend, family_setting: str, status: ServerStatus, binding: Engine,
                 next_edit_name: Callable[[str], bool]) -> None:
        self.status, self.binding = status, binding
        self.discovery = Discovery(backend, family_setting, status, self._probe_failed,  # what it serves
                                   next_edit_name)  # which listed names are trained next-edit models (served.py)
        self.availability = Availability()
        self._recovery: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # background probes (cancelled at close)
        self._closing: set[asyncio.Task[None]] = set()  # replaced backends closing (awaited at close)
        self._logged_failure: str | None = None  # the backend failure last logged as a warning
        self._next_edit: Backend | None = None  # the launched next-edit process's (module doc)
        self._closed = False  # ``close`` ran: nothing more is started

    @property
    def closed(self) -> bool:
        """``close`` ran: nothing is started, and no backend is taken, any more."""
        return self._closed

    @property
    def backend(self) -> Backend:
        return self.discovery.backend

    @property
    def connection(self) -> Connection:
        return self.discovery.connection

    @property
    def served(self) -> ModelInfo | None:
        """The served model, once listed (served.py keeps the one copy)."""
        return self.discovery.served

    @property
    def deadline_s(self) -> float:
        return self.discovery.deadline_s

    # -- what the endpoint is --------------------------------------------------------------------
    def use(self, backend: Backend) -> None:
        """A new connection: everything learned about the old one goes; the old backend closes.
        After ``close``, the one handed over is closed instead (nobody would close it later)."""
        if self._closed:
            self._retire(backend)
            return
        old = self.discovery.use(backend)
        self.availability = Availability()
        self._retire(old)

    def retune(self, connection: Connection) -> None:
        """The same route with other limits (``Connection.same_route``): what was learned stays,
        nothing is probed again, the requests in flight finish on the same client."""
        self.backend.retune(connection)

    def use_next_edit(self, connection: Connection | None) -> None:
        """The next-edit process's connection (None: none runs); a new backend only when it changed."""
        if self._closed or connection == (self._next_edit.connection if self._next_edit is not None else None):
            return
        if connection is not None and self._next_edit is not None and connection.same_route(self._next_edit.connection):
            self._next_edit.retune(connection)  # limits only: nothing in flight is cut
            return
        old, self._next_edit = self._next_edit, Backend(connection) if connection is not None else None
        if old is not None:
            self._retire(old)

    def next_edit_backend(self) -> Backend | None:
        """The next-edit process's backend (its connection names the served model), or None."""
        return self._next_edit

    def listed_next_edit(self) -> str | None:
        """A trained next-edit model the endpoint lists beside the served one (a team's front over a
        plan that serves one, engine/front_route.py), learned with the served model (served.py)."""
        return self.discovery.next_edit

    def use_family(self, setting: str) -> None:
        """``completion.family`` changed: only the families are learned again."""
        self.discovery.use_family(setting)

    async def model_and_family(self) -> tuple[ModelInfo, Family] | None:
        """Raises ``BackendError`` when the endpoint fails; the caller's cap bounds the wait."""
        return await self.discovery.model_and_family()

    async def model(self) -> ModelInfo:
        """The served model, for a request about to be sent: refused as ``refusal`` says (next-edit
        asks only this: it went past the gate to an endpoint known down, and in launch mode to
        the settings' endpoint before the engine's, tests/adversarial/test_connection.py)."""
        if (why := self.refusal()) is not None:
            raise BackendError(ErrorKind.UNAVAILABLE, why)
        return await self.discovery.served_model()

    async def context_length(self, model: str, default: int) -> int:
        """``max_model_len`` of ``model`` as the endpoint lists it, else ``default``: looked up
        within the probe's deadline, a miss remembered for the connection (served.py)."""
        return await self.discovery.context_length(model, default)

    # -- whether to ask it now ------------------------------------------------------------------
    def refusal(self) -> str | None:
        """Why no request should go to the endpoint now (completion answers nothing, chat this
        reason), or None: a launched engine not ready yet (or not even found: ``engine_pending``), an
        endpoint known down or asking to wait."""
        if self.connection.engine_pending or not self.binding.ready:
            return NOT_READY
        return self.availability.blocked()

    def outcome(self, exc: BackendError | None) -> None:
        """How a request to the backend ended (completion and chat report here): the endpoint's
        availability, the status, and the user if needed."""
        if exc is None:
            if self._logged_failure is not None:
                log.info("backend: answering again")
                self._logged_failure = None
            self.availability.succeeded()
            self.status.succeeded()
            return
        # One line per failure (issue 23): the same one again, until an answer, only at debug.
        log.log(logging.DEBUG if str(exc) == self._logged_failure else logging.WARNING, "backend: %s", exc)
        self._logged_failure = str(exc)
        if self.availability.failed(exc):
            self.watch_recovery()  # the engine asked for a pause (Retry-After)
        elif exc.kind in ENDPOINT_KINDS:
            self.check_soon()
        if exc.kind.request_local:
            return  # this request's own problem: the endpoint is as healthy as it was
        self.status.failed(exc, self.availability.blocked())
        if not exc.kind.transient:
            self.status.tell_user(f"vLLM Companion: {exc}")

    def _probe_failed(self, exc: BackendError, epoch: int) -> BackendError:
        """A probe of the endpoint itself failed: leave it alone while it is down or hung, and say
        so now (the request that started the probe may have been answered at its cap already,
        before the probe's own deadline, and so reports nothing). A probe of a connection that has
        since been replaced (``epoch``) says nothing of the new one."""
        if epoch != self.discovery.epoch:
            return exc
        if self.availability.failed(exc, probe=True):
            self.watch_recovery()
        if not exc.kind.request_local:
            self.status.failed(exc, self.availability.blocked())
        return exc

    # -- probes and recovery --------------------------------------------------------------------
    async def probe(self) -> None:
        """Contact the endpoint now (the served model read again), so the status shows its health
        straight away: at start, when the connection changed, every ``healthIntervalS`` attached.
        Not while the endpoint is left alone (the recovery probes it) or no engine is there yet."""
        if self.connection.engine_pending or self.availability.blocked():
            return
        self.discovery.relist()
        try:
            await self.model_and_family()
        except BackendError as exc:
            self.outcome(exc)
        else:
            self.outcome(None)

    def probe_soon(self) -> None:
        """``probe`` in the background (a new connection: the status follows at once)."""
        self._spawn(self.probe())

    async def watch(self, interval_s: Callable[[], float]) -> None:
        """Attach mode: check the endpoint every ``interval_s()`` so the status bar follows it even
        while nobody types (the launch mode has its supervisor for this)."""
        while True:
            await asyncio.sleep(interval_s())
            if not self.binding.launch:
                await self.probe()

    def check_soon(self) -> None:
        """A generation failed for a reason that may be the endpoint's: probe it now, in the
        background (its answer decides whether the next requests wait for it)."""
        recovering = self._recovery is not None and not self._recovery.done()
        if not (self.discovery.probing or recovering or self._closed) and self.refusal() is None:
            self.discovery.relist()

    def watch_recovery(self) -> None:
        if not self._closed and (self._recovery is None or self._recovery.done()):
            self._recovery = asyncio.ensure_future(self._recover())

    async def _recover(self) -> None:
        while (availability := self.availability).blocked():
            await asyncio.sleep(availability.remaining_s() + 0.01)
            try:
                with availability.checking():
                    async with asyncio.timeout(self.deadline_s):
                        await self.discovery.refresh()
            except (BackendError, TimeoutError) as exc:
                error = exc if isinstance(exc, BackendError) else BackendError(ErrorKind.TIMEOUT, "no answer")
                availability.failed(error, probe=True)
                continue
            availability.succeeded()
            self.status.succeeded()
            log.info("the endpoint answers again")

    def _retire(self, backend: Backend) -> None:
        """Close a backend that is no longer served, in the background (a stream still on it keeps
        it open until it ends: ``LeasedClient.retire``); ``close`` awaits it, never cancels it."""
        task = asyncio.ensure_future(backend.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:  # after the shutdown: nothing runs any more
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """The shutdown (``Services.aclose``): every probe of this object and of its discovery is
        cancelled and awaited, nothing starts after, then every backend closes (module doc)."""
        self._closed = True
        tasks = [*self._tasks, *([self._recovery] if self._recovery is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.discovery.close()
        self._retire(self.backend)
        if self._next_edit is not None:
            self._retire(self._next_edit)
        await asyncio.gather(*self._closing, return_exceptions=True)
