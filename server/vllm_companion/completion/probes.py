"""What completion must know about the endpoint before its first prompt: the served model and
its prompt family (with the FIM-token check), learned once and shared.

Each probe runs as one shared task with its own overall deadline (``backend.firstTokenTimeoutS``,
at most ``PROBE_DEADLINE_S``); requests wait on it only within their own cap (``asyncio.shield``:
a request that gives up leaves the probe running for the next one), and no lock is ever held
across a network call. A probe that fails is forgotten, so the next request tries again; a
FIM-token check that cannot finish (a ``/tokenize`` that trickles or fails) trusts the family as
named, like a server without ``/tokenize``. While the endpoint is known down, ``watch_recovery``
probes it in the background (at the end of each back-off) and clears the state as soon as it
answers, so the status recovers without anybody typing.

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
from typing import Any, TypeVar

from ..backend import Backend, BackendError, ErrorKind, ModelInfo
from ..prompts import PLAIN, Family, resolve_family
from ..status import ServerStatus
from .fim_check import unknown_fim_tokens

log = logging.getLogger(__name__)
PROBE_DEADLINE_S = 8.0
UPSTREAM_TRIES = 3
UPSTREAM_PAUSE_S = 0.05
T = TypeVar("T")


class Probes:
    def __init__(self, backend: Backend, family_setting: str, status: ServerStatus) -> None:
        self.backend, self.family_setting, self.status = backend, family_setting, status
        self.deadline_s = min(PROBE_DEADLINE_S, backend.settings.first_token_timeout_s)
        self.families: dict[str, Family] = {}
        self._model: asyncio.Task[ModelInfo] | None = None
        self._family: dict[str, asyncio.Task[Family]] = {}
        self._recovery: asyncio.Task[None] | None = None

    async def model_and_family(self) -> tuple[ModelInfo, Family] | None:
        """Raises ``BackendError`` when the endpoint fails; the caller's cap bounds the wait."""
        model = await self.model()
        if (known := self.families.get(model.id)) is not None:
            return model, known
        task = self._family.get(model.id)
        if task is None:
            task = self._family[model.id] = _shared(self._check_family(model), lambda: self._family.pop(model.id, None))
        return model, await asyncio.shield(task)

    async def model(self) -> ModelInfo:
        if (info := self.backend.cached_model) is not None:
            return info
        if self._model is None:
            self._model = _shared(self._read_model(), self._forget_model)
        return await asyncio.shield(self._model)

    def _forget_model(self) -> None:
        self._model = None

    async def _read_model(self) -> ModelInfo:
        try:
            async with asyncio.timeout(self.deadline_s):
                return await self._list_models()
        except TimeoutError as exc:
            error = BackendError(ErrorKind.TIMEOUT, "the engine did not list its models in time")
            raise self._probe_failed(error) from exc
        except BackendError as exc:
            raise self._probe_failed(exc) from exc
        finally:
            self._model = None

    async def _list_models(self) -> ModelInfo:
        """The served model; a worker's failure behind a router is asked again (module doc)."""
        for attempt in range(UPSTREAM_TRIES):
            try:
                return await self.backend.model_info(refresh=True)
            except BackendError as exc:
                if exc.kind is not ErrorKind.UPSTREAM:
                    raise
                why = exc
            await asyncio.sleep(UPSTREAM_PAUSE_S * (attempt + 1))
        why_not = f"no worker behind the endpoint answered ({why.message[:200]})"
        raise BackendError(ErrorKind.SERVER, why_not, why.status)

    def _probe_failed(self, exc: BackendError) -> BackendError:
        """A probe of the endpoint itself failed: leave it alone while it is down or hung, and say
        so now (the request that started the probe may have been answered at its cap already,
        before the probe's own deadline, and so reports nothing)."""
        if self.backend.availability.failed(exc, probe=True):
            self.watch_recovery()
        if not exc.kind.request_local:
            self.status.failed(exc, self.backend.availability.blocked())
        return exc

    def check_soon(self) -> None:
        """A generation failed for a reason that may be the endpoint's: probe it now, in the
        background (its answer decides whether the next requests wait for it)."""
        if self._model is None and (self._recovery is None or self._recovery.done()):
            self.backend.forget_model()
            self._model = _shared(self._read_model(), self._forget_model)

    async def _check_family(self, model: ModelInfo) -> Family:
        family = resolve_family(model.id, self.family_setting)
        if family.is_fim:
            try:
                async with asyncio.timeout(self.deadline_s):
                    bad = await unknown_fim_tokens(self.backend, family)
            except (TimeoutError, BackendError) as exc:  # e.g. a /tokenize that trickles
                log.warning("FIM-token check failed (%s): using %s as named", exc, family.name)
                bad = None
            if bad:
                msg = (
                    f"{model.id} does not have the {family.name} FIM tokens ({', '.join(bad)}): "
                    "using prefix-only prompts. Set completion.family to the model's real family."
                )
                self.status.tell_user(msg, error=False)
                log.warning(msg)
                family = PLAIN
        self.families[model.id] = family
        self.status.serving(model.id, family.name)
        return family

    def watch_recovery(self) -> None:
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.ensure_future(self._recover())

    async def _recover(self) -> None:
        availability = self.backend.availability
        while availability.blocked():
            await asyncio.sleep(availability.remaining_s() + 0.01)
            try:
                with availability.checking():
                    async with asyncio.timeout(self.deadline_s):
                        await self.backend.model_info(refresh=True)
            except (BackendError, TimeoutError) as exc:
                error = exc if isinstance(exc, BackendError) else BackendError(ErrorKind.TIMEOUT, "no answer")
                availability.failed(error, probe=True)
                continue
            availability.succeeded()
            self.status.succeeded()
            log.info("the endpoint answers again")


def _shared(coro: Coroutine[Any, Any, T], on_failure: Callable[[], object]) -> asyncio.Task[T]:
    """A task many requests may await; its failure is read here (and forgotten, to try again)."""
    task = asyncio.ensure_future(coro)

    def done(t: asyncio.Task[T]) -> None:
        if t.cancelled() or t.exception() is not None:
            on_failure()

    task.add_done_callback(done)
    return task
