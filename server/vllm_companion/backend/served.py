"""What the endpoint serves, learned once per connection: the served model (and every listed
model's context length) and its prompt family with the FIM-token check. Part of the endpoint's
health (health.py builds it and is its only user; completion, chat and next-edit ask the health).

- Each probe runs as one shared task with its own overall deadline (``backend.firstTokenTimeoutS``,
  at most ``PROBE_DEADLINE_S``); requests wait on it only within their own cap (``asyncio.shield``:
  a request that gives up leaves the probe running for the next one), and no lock is ever held
  across a network call. A probe that fails is forgotten, so the next request tries again (and
  the health hears of it: ``failed``); a FIM-token check that cannot finish (a ``/tokenize`` that
  trickles or fails) trusts the family as named, like a server without ``/tokenize``.
- Chat's context length (``context_length``) of a model the last listing lacks asks the endpoint
  once more, within the same deadline, and remembers a miss (not listed, listed without
  ``max_model_len`` or no answer in time) for the connection: it used to list again for every chat
  with only the first-token timeout as bound (review finding left from issue 21). Chats that
  miss at the same time share one lookup (a task of this object's): each ran its own listing
  before the chat limiter, so eight chats at once asked a hung endpoint for eight listings of up to
  4 MiB each (tests/adversarial/test_connection.py). A lookup says nothing of the endpoint's
  health: the chat's own request does.
- Behind a fleet's router the model listing goes to one worker the router picks, which may be a
  replica that just died and is not yet out of its list (vllm-router 0.1.17 answers 500 ``Request
  failed: ...``; errors.py calls that ``UPSTREAM``): the listing is asked again, up to
  ``UPSTREAM_TRIES`` times; only when no worker answers is it the endpoint's failure (issue 19,
  point 10).
- A listing of two models where one is a trained next-edit model (a team's front lists the
  completion model and the plan's next-edit model, engine/front_route.py; ``next_edit_name``, from
  the app, says which names are: nextedit/model.py ``trained_next_edit``): without
  ``backend.model``, the served model is never that one while another is listed, and the
  next-edit model is kept apart (``next_edit``) for next-edit requests on the same endpoint. A
  ``backend.model`` the user set is served as set. Only in a short listing (``MAX_NEXT_EDIT_LISTING``
  models: a front lists two, a server a few): in a gateway's catalogue (OpenRouter lists ~300)
  any listed id that reads like a next-edit model (``zeta``, ``sweep``, ``instinct`` in it) took
  every next-edit prompt, to a provider the user never picked, on the user's key
  (tests/adversarial/test_connection.py). Once kept, it stays while listed (no flapping).
- Every task here is this object's: ``close`` cancels and awaits them (a clean shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..prompts import PLAIN, Family, resolve_family
from ..status import ServerStatus
from .client import Backend, ModelInfo
from .connection import Connection
from .errors import BackendError, ErrorKind
from .fim_check import unknown_fim_tokens

log = logging.getLogger(__name__)
PROBE_DEADLINE_S = 8.0
MAX_NEXT_EDIT_LISTING = 4  # models listed, at most, where one may be kept apart for next edits (module doc)
UPSTREAM_TRIES = 3
UPSTREAM_PAUSE_S = 0.05
T = TypeVar("T")


class Discovery:
    def __init__(self, backend: Backend, family_setting: str, status: ServerStatus,
                 failed: Callable[[BackendError, int], BackendError], next_edit_name: Callable[[str], bool]) -> None:
        self.backend, self.family_setting, self.status = backend, family_setting, status
        self._failed = failed  # the health hears of a failed probe (availability, status)
        self._next_edit_name = next_edit_name  # is this model id a trained next-edit model's? (module doc)
        self.next_edit: str | None = None  # a trained next-edit model listed beside the served one
        self.epoch = 0  # which backend a probe's answer belongs to
        self.served: ModelInfo | None = None  # the served model, once listed (the one copy)
        self.families: dict[str, Family] = {}
        self._lengths: dict[str, int | None] = {}  # every listed model's max_model_len
        self._missing: set[str] = set()  # models this connection's listing lacks (context_length)
        self._kept: str | None = None  # the served model's id, kept while listed (``_learned``)
        self._model: asyncio.Task[ModelInfo] | None = None
        self._family: dict[str, asyncio.Task[Family]] = {}
        self._lookup: asyncio.Task[None] | None = None  # chat's context-length listing (module doc)
        self._running: set[asyncio.Task[Any]] = set()  # every probe not yet ended, old epochs' too

    @property
    def connection(self) -> Connection:
        return self.backend.connection

    @property
    def deadline_s(self) -> float:
        return min(PROBE_DEADLINE_S, self.connection.first_token_timeout_s)

    @property
    def probing(self) -> bool:
        return self._model is not None

    def use(self, backend: Backend) -> Backend:
        """A new connection: everything learned about the old one goes; returns the old backend.
        Probes of the old one end on their own deadline and say nothing of the new one (epoch)."""
        old, self.backend = self.backend, backend
        self.epoch += 1
        self.served, self._lengths, self._missing, self.families, self._kept = None, {}, set(), {}, None
        self.next_edit = None
        self._model, self._family, self._lookup = None, {}, None
        return old

    def use_family(self, setting: str) -> None:
        """``completion.family`` changed: only the families are learned again."""
        if setting != self.family_setting:
            self.family_setting, self.families, self._family = setting, {}, {}

    async def model_and_family(self) -> tuple[ModelInfo, Family]:
        """Raises ``BackendError`` when the endpoint fails; the caller's cap bounds the wait."""
        model = await self.served_model()
        if (known := self.families.get(model.id)) is not None:
            return model, known
        task = self._family.get(model.id)
        if task is None:
            task = self._family[model.id] = self._shared(self._check_family(model),
                                                         lambda: self._family.pop(model.id, None))
        return model, await asyncio.shield(task)

    async def served_model(self) -> ModelInfo:
        if self.served is not None:
            return self.served
        return await asyncio.shield(self.list_soon())

    def relist(self) -> None:
        """Forget the served model and read it again (a probe of the endpoint's health), sharing a
        listing that runs already."""
        self.served = None
        self.list_soon()

    def list_soon(self) -> asyncio.Task[ModelInfo]:
        """Read the served model again, in the background, unless a listing runs already: the
        listing's task."""
        if self._model is None:
            epoch = self.epoch
            self._model = self._shared(self._read_model(epoch), lambda: self._forget_model(epoch))
        return self._model

    async def context_length(self, model: str, default: int) -> int:
        """``max_model_len`` of ``model`` as the endpoint lists it (each model its own), else
        ``default``; a model the last listing lacks is looked up once per connection (module doc)."""
        if model not in self._lengths and model not in self._missing:
            epoch = self.epoch
            if self._lookup is None:
                self._lookup = self._shared(self._look_up(epoch), lambda: None)
            try:
                async with asyncio.timeout(self.deadline_s):
                    await asyncio.shield(self._lookup)
            except (BackendError, TimeoutError) as exc:
                why = str(exc) or f"no answer in {self.deadline_s:g} s"
                log.info("no context length for %s (%s): %d tokens assumed", model, why, default)
            if epoch == self.epoch and model not in self._lengths:
                self._missing.add(model)
        return self._lengths.get(model) or default

    async def _look_up(self, epoch: int) -> None:
        """One listing for every chat missing a context length now, within the probe's deadline."""
        try:
            async with asyncio.timeout(self.deadline_s):
                self._learned(epoch, *await self._list_models())
        finally:
            if epoch == self.epoch:
                self._lookup = None

    async def refresh(self) -> None:
        """List again now (the recovery's probe; its caller bounds it)."""
        self._learned(self.epoch, *await self.backend.served_model())

    def _forget_model(self, epoch: int) -> None:
        if epoch == self.epoch:
            self._model = None

    def _learned(self, epoch: int, served: ModelInfo, lengths: dict[str, int | None]) -> ModelInfo:
        """No ``backend.model``: the model served so far stays while the endpoint lists it (a
        gateway that lists in another order each time flapped the model, family and status), and
        a trained next-edit model is not served while another model is listed (module doc)."""
        if epoch != self.epoch:  # an answer about a connection since replaced
            return served
        if self.connection.model is None:
            served = self._completion_model(served, lengths)
        self.served, self._lengths, self._kept = served, lengths, served.id
        self.next_edit = self._listed_next_edit(served.id, lengths)
        return served

    def _listed_next_edit(self, served: str, lengths: dict[str, int | None]) -> str | None:
        """The trained next-edit model listed beside ``served``: the one kept so far while listed
        (a listing in another order each time must not flap it), else the first; none in a
        listing of over ``MAX_NEXT_EDIT_LISTING`` models (module doc)."""
        if len(lengths) > MAX_NEXT_EDIT_LISTING:
            return None
        if self.next_edit is not None and self.next_edit in lengths and self.next_edit != served:
            return self.next_edit
        return next((m for m in lengths if m != served and self._next_edit_name(m)), None)

    def _completion_model(self, first: ModelInfo, lengths: dict[str, int | None]) -> ModelInfo:
        """The model completion uses, of a listing whose first entry is ``first``: the one kept so
        far while listed, else the first that is not a trained next-edit model, else ``first``."""
        kept = self._kept
        if kept is not None and kept in lengths and not self._next_edit_name(kept):
            return ModelInfo(kept, lengths[kept])
        if not self._next_edit_name(first.id):
            return first
        other = next((m for m in lengths if not self._next_edit_name(m)), None)
        return first if other is None else ModelInfo(other, lengths[other])

    async def _read_model(self, epoch: int) -> ModelInfo:
        try:
            async with asyncio.timeout(self.deadline_s):
                return self._learned(epoch, *await self._list_models())
        except TimeoutError as exc:
            error = BackendError(ErrorKind.TIMEOUT, "the engine did not list its models in time")
            raise self._failed(error, epoch) from exc
        except BackendError as exc:
            raise self._failed(exc, epoch) from exc
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
        epoch, family = self.epoch, resolve_family(model.id, self.family_setting)
        if family.is_fim:
            try:
                async with asyncio.timeout(self.deadline_s):
                    bad = await unknown_fim_tokens(self.backend, family, model.id)
            except (TimeoutError, BackendError) as exc:  # e.g. a /tokenize that trickles
                log.warning("FIM-token check failed (%s): using %s as named", exc, family.name)
                bad = None
            if bad and epoch == self.epoch:  # not for a connection replaced meanwhile
                msg = (
                    f"{model.id} does not have the {family.name} FIM tokens ({', '.join(bad)}): "
                    "using prefix-only prompts. Set completion.family to the model's real family."
                )
                self.status.tell_user(msg, error=False)
                log.warning(msg)
            family = PLAIN if bad else family
        if epoch == self.epoch:
            self.families[model.id] = family
            self.status.serving(model.id, family.name)
        return family

    def _shared(self, coro: Coroutine[Any, Any, T], on_failure: Callable[[], object]) -> asyncio.Task[T]:
        """A task many requests may await; its failure is read here (and forgotten, to try again)."""
        task = asyncio.ensure_future(coro)
        self._running.add(task)

        def done(t: asyncio.Task[T]) -> None:
            self._running.discard(t)
            if t.cancelled() or t.exception() is not None:
                on_failure()

        task.add_done_callback(done)
        return task

    async def close(self) -> None:
        """Cancel every probe still running and wait for each to end (the shutdown's)."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._model, self._family, self._lookup = None, {}, None
