"""The endpoint's health, in one owner: what it serves (discovery), whether it is worth asking
now (availability), when it answers again (recovery), and what the status says about it.
Completion, chat and the model picker all ask here (issue 21, point 2).

- Discovery: the served model (and every listed model's context length) and its prompt family
  (with the FIM-token check), learned once per connection and kept here only. Each probe runs as
  one shared task with its own overall deadline (``backend.firstTokenTimeoutS``, at most
  ``PROBE_DEADLINE_S``); requests wait on it only within their own cap (``asyncio.shield``: a
  request that gives up leaves the probe running for the next one), and no lock is ever held
  across a network call. A probe that fails is forgotten, so the next request tries again; a
  FIM-token check that cannot finish (a ``/tokenize`` that trickles or fails) trusts the family
  as named, like a server without ``/tokenize``.
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

Behind a fleet's router the model listing goes to one worker the router picks, which may be a
replica that just died and is not yet out of its list (vllm-router 0.1.17 answers 500 ``Request
failed: ...``; errors.py calls that ``UPSTREAM``): the listing is asked again, up to
``UPSTREAM_TRIES`` times; only when no worker answers is it the endpoint's failure (issue 19,
point 10).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from ..prompts import PLAIN, Family, resolve_family
from ..status import ServerStatus
from .availability import ENDPOINT_KINDS, Availability
from .client import Backend, ModelInfo
from .connection import Connection
from .errors import BackendError, ErrorKind
from .fim_check import unknown_fim_tokens

log = logging.getLogger(__name__)
PROBE_DEADLINE_S = 8.0
UPSTREAM_TRIES = 3
UPSTREAM_PAUSE_S = 0.05
NOT_READY = "the local engine is not ready yet"
T = TypeVar("T")


class Engine(Protocol):
    """What the health reads of the engine binding (engine/binding.py; backend/ does not import
    engine/): whether this server launched the engine, and whether it is ready."""

    launch: bool

    @property
    def ready(self) -> bool: ...


class Health:
    def __init__(self, backend: Backend, family_setting: str, status: ServerStatus, binding: Engine) -> None:
        self.backend, self.family_setting, self.status, self.binding = backend, family_setting, status, binding
        self.availability = Availability()
        self.served: ModelInfo | None = None  # the served model, once listed (the one copy)
        self.families: dict[str, Family] = {}
        self._lengths: dict[str, int | None] = {}  # every listed model's max_model_len
        self._kept: str | None = None  # the served model's id, kept while listed (``_learned``)
        self._epoch = 0  # which backend a probe's answer belongs to
        self._model: asyncio.Task[ModelInfo] | None = None
        self._family: dict[str, asyncio.Task[Family]] = {}
        self._recovery: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # background probes, old backends closing
        self._logged_failure: str | None = None  # the backend failure last logged as a warning
        self._next_edit: Backend | None = None  # the launched next-edit process's (module doc)

    @property
    def connection(self) -> Connection:
        return self.backend.connection

    @property
    def deadline_s(self) -> float:
        return min(PROBE_DEADLINE_S, self.connection.first_token_timeout_s)

    # -- what the endpoint is --------------------------------------------------------------------
    def use(self, backend: Backend) -> None:
        """A new connection: everything learned about the old one goes; the old backend closes."""
        old, self.backend = self.backend, backend
        self._epoch += 1
        self.availability = Availability()
        self.served, self._lengths, self.families, self._kept = None, {}, {}, None
        self._model, self._family = None, {}
        self._spawn(old.close())

    def retune(self, connection: Connection) -> None:
        """The same route with other limits (``Connection.same_route``): what was learned stays,
        nothing is probed again, the requests in flight finish on the same client."""
        self.backend.retune(connection)

    def use_next_edit(self, connection: Connection | None) -> None:
        """The next-edit process's connection (None: none runs); a new backend only when it changed."""
        if connection == (self._next_edit.connection if self._next_edit is not None else None):
            return
        if connection is not None and self._next_edit is not None and connection.same_route(self._next_edit.connection):
            self._next_edit.retune(connection)  # limits only: nothing in flight is cut
            return
        old, self._next_edit = self._next_edit, Backend(connection) if connection is not None else None
        if old is not None:
            self._spawn(old.close())

    def next_edit_backend(self) -> Backend | None:
        """The next-edit process's backend (its connection names the served model), or None."""
        return self._next_edit

    def use_family(self, setting: str) -> None:
        """``completion.family`` changed: only the families are learned again."""
        if setting != self.family_setting:
            self.family_setting, self.families, self._family = setting, {}, {}

    async def model_and_family(self) -> tuple[ModelInfo, Family] | None:
        """Raises ``BackendError`` when the endpoint fails; the caller's cap bounds the wait."""
        model = await self._served_model()
        if (known := self.families.get(model.id)) is not None:
            return model, known
        task = self._family.get(model.id)
        if task is None:
            task = self._family[model.id] = _shared(self._check_family(model), lambda: self._family.pop(model.id, None))
        return model, await asyncio.shield(task)

    async def model(self) -> ModelInfo:
        """The served model, for a request about to be sent: refused as ``refusal`` says (next-edit
        asks only this: it went past the gate to an endpoint known down, and in launch mode to
        the settings' endpoint before the engine's, tests/adversarial/test_connection.py)."""
        if (why := self.refusal()) is not None:
            raise BackendError(ErrorKind.UNAVAILABLE, why)
        return await self._served_model()

    async def _served_model(self) -> ModelInfo:
        if self.served is not None:
            return self.served
        if self._model is None:
            epoch = self._epoch
            self._model = _shared(self._read_model(epoch), lambda: self._forget_model(epoch))
        return await asyncio.shield(self._model)

    async def context_length(self, model: str, default: int) -> int:
        """``max_model_len`` of ``model`` as the endpoint lists it (each model its own), else
        ``default``; a model not in the last listing has the endpoint asked again."""
        if model not in self._lengths:
            if self.served is None:
                await self._served_model()
            elif model != self.served.id:
                self._learned(self._epoch, *await self.backend.served_model())
        return self._lengths.get(model) or default

    def _forget_model(self, epoch: int) -> None:
        if epoch == self._epoch:
            self._model = None

    def _learned(self, epoch: int, served: ModelInfo, lengths: dict[str, int | None]) -> ModelInfo:
        """No ``backend.model``: the model served so far stays while the endpoint lists it (a
        gateway that lists in another order each time flapped the model, family and status)."""
        if epoch != self._epoch:  # an answer about a connection since replaced
            return served
        kept = self._kept
        if self.connection.model is None and kept is not None and kept != served.id and kept in lengths:
            served = ModelInfo(kept, lengths[kept])
        self.served, self._lengths, self._kept = served, lengths, served.id
        return served

    async def _read_model(self, epoch: int) -> ModelInfo:
        try:
            async with asyncio.timeout(self.deadline_s):
                return self._learned(epoch, *await self._list_models())
        except TimeoutError as exc:
            error = BackendError(ErrorKind.TIMEOUT, "the engine did not list its models in time")
            raise self._probe_failed(error, epoch) from exc
        except BackendError as exc:
            raise self._probe_failed(exc, epoch) from exc
        finally:
            self._forget_model(epoch)

    async def _list_models(self) -> tuple[ModelInfo, dict[str, int | None]]:
        """The served model; a worker's failure behind a router is asked again (module doc)."""
        for attempt in range(UPSTREAM_TRIES):
            try:
                return await self.backend.served_model()
            except BackendError as exc:
                if exc.kind is not ErrorKind.UPSTREAM:
                    raise
                why = exc
            await asyncio.sleep(UPSTREAM_PAUSE_S * (attempt + 1))
        why_not = f"no worker behind the endpoint answered ({why.message[:200]})"
        raise BackendError(ErrorKind.SERVER, why_not, why.status)

    async def _check_family(self, model: ModelInfo) -> Family:
        epoch, family = self._epoch, resolve_family(model.id, self.family_setting)
        if family.is_fim:
            try:
                async with asyncio.timeout(self.deadline_s):
                    bad = await unknown_fim_tokens(self.backend, family, model.id)
            except (TimeoutError, BackendError) as exc:  # e.g. a /tokenize that trickles
                log.warning("FIM-token check failed (%s): using %s as named", exc, family.name)
                bad = None
            if bad and epoch == self._epoch:  # not for a connection replaced meanwhile
                msg = (
                    f"{model.id} does not have the {family.name} FIM tokens ({', '.join(bad)}): "
                    "using prefix-only prompts. Set completion.family to the model's real family."
                )
                self.status.tell_user(msg, error=False)
                log.warning(msg)
            family = PLAIN if bad else family
        if epoch == self._epoch:
            self.families[model.id] = family
            self.status.serving(model.id, family.name)
        return family

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
        if epoch != self._epoch:
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
        self.served = None
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
        if self._model is None and (self._recovery is None or self._recovery.done()) and self.refusal() is None:
            self.served, epoch = None, self._epoch
            self._model = _shared(self._read_model(epoch), lambda: self._forget_model(epoch))

    def watch_recovery(self) -> None:
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.ensure_future(self._recover())

    async def _recover(self) -> None:
        while (availability := self.availability).blocked():
            await asyncio.sleep(availability.remaining_s() + 0.01)
            try:
                with availability.checking():
                    async with asyncio.timeout(self.deadline_s):
                        self._learned(self._epoch, *await self.backend.served_model())
            except (BackendError, TimeoutError) as exc:
                error = exc if isinstance(exc, BackendError) else BackendError(ErrorKind.TIMEOUT, "no answer")
                availability.failed(error, probe=True)
                continue
            availability.succeeded()
            self.status.succeeded()
            log.info("the endpoint answers again")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in [*self._tasks, *([self._recovery] if self._recovery else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.backend.close()
        if self._next_edit is not None:
            await self._next_edit.close()


def _shared(coro: Coroutine[Any, Any, T], on_failure: Callable[[], object]) -> asyncio.Task[T]:
    """A task many requests may await; its failure is read here (and forgotten, to try again)."""
    task = asyncio.ensure_future(coro)

    def done(t: asyncio.Task[T]) -> None:
        if t.cancelled() or t.exception() is not None:
            on_failure()

    task.add_done_callback(done)
    return task
