"""Inline completion, from cursor to cleaned-up text: the domain code behind the LSP handlers.

Order per request: prefilter (request.py) -> endpoint known down? -> model and family (shared
probes) -> window (token budget) -> typed-ahead -> cache -> reuse an in-flight generation ->
debounce (automatic triggers only) -> new generation -> wall-clock cap. The cap
(``completion.timeoutMs``) runs from the request's arrival and covers every step, probes
included, and the way back (``send_margin``, request.py). Every path ends in bounded time with
text or ``None``. The endpoint is the health's (backend/health.py): whether to ask it now (a
launched engine not ready, an endpoint down), the served model and family, and where each
outcome goes (availability, recovery, status); request-local failures (a prompt the engine
refused) go nowhere else. A generation keeps the backend it started on (its stream leases that
client, backend/connection.py ``LeasedClient``); when a route change replaced it meanwhile, how
it ended says nothing of the new route and is not reported there (``_attempt``, ``_finished``;
chat/answer.py does the same; tests/e2e/test_completion_route_change.py).

The service owns its background work: prefetches after an accept, the documents' generations and
the warm-up (warm.py). ``aclose`` (the shutdown, app.py ``Services.aclose``) cancels and awaits
them all, before the health closes the backend under them (review finding left from issue 21:
they were left pending at exit, or failed on the closed client and reported the endpoint down).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..backend import BackendError, ErrorKind, ModelInfo
from ..backend.health import Health
from ..config import Config, redact_url
from ..context import ContextGatherer, context_tokens
from ..documents import Document, DocumentStore
from ..privacy import Privacy
from ..prompts import Family
from ..repetition import LoopHealth
from ..sampling import completion_params
from ..status import ServerStatus
from ..telemetry.tuning import Tuned
from ..turns import Turns
from .budgets import SHRINKS, Budgets
from .cache import CompletionCache, remainder
from .debounce import AdaptiveDebounce
from .generation import Generation
from .postprocess import finisher, stages_for
from .prompt import gather_context, render_prompt
from .request import PARTIAL_GRACE_S, CompletionRequest, eligible, send_margin, skip_here
from .slot import Slot, Subscription, Superseded
from .warm import Warmer
from .window import Window, build_window

log = logging.getLogger(__name__)
_ids = itertools.count(1)


@dataclass
class Attempt:
    """One try at a prompt: its text (or None), and whether the engine found it too long."""

    text: str | None
    too_long: bool = False


class CompletionService:
    def __init__(self, config: Config, health: Health, documents: DocumentStore, status: ServerStatus,
                 loops: LoopHealth, privacy: Privacy, turns: Turns, context: ContextGatherer,
                 learned: Callable[[str, int], Tuned]) -> None:
        self.health, self.documents, self.status, self.loops = health, documents, status, loops
        self.privacy, self.context, self.learned = privacy, context, learned  # learned: the Learner (app.py)
        self.turns = turns  # shared with the chat service (app.py)
        self.typing = AdaptiveDebounce()  # fed by the documents' changes (typed)
        self._background: set[asyncio.Task[str | None]] = set()  # prefetches
        self.slots: defaultdict[str, Slot] = defaultdict(Slot)
        self.budgets = Budgets()  # per model: what context-length rejections taught
        self.config, self.settings = config, config.completion
        self.cache = CompletionCache(self.settings.cache_size, self.settings.cache_ttl_s)
        self.warmer = Warmer(health, documents, privacy, context, self.budgets, turns, lambda: self.settings)

    def reconfigure(self, config: Config) -> None:
        """New settings: the cache is kept unless its own settings changed (a new connection
        clears it: ``connected``), and the family is learned again only if ``family`` changed."""
        old, self.config, self.settings = self.settings, config, config.completion
        if (old.cache_size, old.cache_ttl_s) != (self.settings.cache_size, self.settings.cache_ttl_s):
            self.cache = CompletionCache(self.settings.cache_size, self.settings.cache_ttl_s)
        self.health.use_family(self.settings.family)

    def connected(self) -> None:
        """A new connection (app.py): suggestions of the old endpoint or model go, and what was
        warmed on it."""
        self.cache = CompletionCache(self.settings.cache_size, self.settings.cache_ttl_s)
        self.warmer.reset()

    def forget(self, uri: str) -> None:
        """The document closed: its slot, generation and cache entries go."""
        slot = self.slots.pop(uri, None)
        if slot is not None:
            slot.close()
        self.cache.forget(uri)
        self.context.forget(uri)
        self.warmer.forget(uri)

    def typed(self, uri: str) -> None:
        """A document changed: a keystroke for the adaptive debounce."""
        self.typing.keystroke()

    def debounce_ms(self) -> int:
        configured = self.settings.debounce_ms
        return self.typing.delay_ms(configured) if self.settings.adaptive_debounce else configured

    def prefetch(self, uri: str, row: int, col: int, text: str) -> None:
        """After an accept: prepare the suggestion at the end of the accepted text (into the cache),
        so the one the editor asks for next is there at once. Only if the text is in the document."""
        doc = self.documents.get(uri)
        lines = text.split("\n")
        end = (row + len(lines) - 1, (col if len(lines) == 1 else 0) + len(lines[-1]))
        if not self.settings.prefetch or doc is None or doc.text_between((row, col), end) != text:
            return
        task = asyncio.ensure_future(self.complete(CompletionRequest(uri, end[0], end[1], automatic=False)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """The shutdown: the prefetches, the documents' generations and the warm-up end, each
        cancelled and awaited (module doc)."""
        tasks: list[asyncio.Task[Any]] = list(self._background)
        for uri in list(self.slots):
            slot = self.slots.pop(uri)
            if slot.generation is not None:
                tasks.append(slot.generation.task)
            slot.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.warmer.close()

    async def complete(self, req: CompletionRequest) -> str | None:
        """The suggestion at ``req``, sent ``send_margin`` before ``completion.timeoutMs`` from
        its arrival (``req.arrived``, time.monotonic)."""
        rid = f"c{next(_ids)}"
        loop = asyncio.get_running_loop()
        cap = self.settings.timeout_ms / 1000
        end = loop.time() + (req.arrived + cap - send_margin(cap) - time.monotonic())
        try:
            async with asyncio.timeout_at(end):
                return await self._complete(req, rid, end - PARTIAL_GRACE_S)
        except TimeoutError:
            log.info("[%s] no answer within the %d ms cap", rid, self.settings.timeout_ms)
            return None

    async def _complete(self, req: CompletionRequest, rid: str, deadline: float) -> str | None:
        self.warmer.stand_aside()  # a real request: the warm-up in flight ends (warm.py)
        doc = eligible(req, self.documents, self.settings, self.privacy)
        if doc is None or self.health.refusal() is not None:
            return None  # a launched engine not ready yet, or an endpoint known down
        with self.slots[req.uri].subscribe() as sub:  # supersedes the document's older request
            if skip_here(doc.line(req.row), req.col) and not req.insert:
                return None
            try:
                found = await self.health.model_and_family()
                if found is None:
                    return None
                for shrink in range(SHRINKS):
                    attempt = await self._attempt(req, doc, sub, found[0], found[1], rid, deadline, shrink)
                    if not attempt.too_long:
                        return attempt.text
                return None
            except Superseded:
                log.debug("[%s] superseded", rid)
                return None
            except BackendError as exc:
                self.health.outcome(exc)
                return None

    async def _attempt(
        self, req: CompletionRequest, doc: Document, sub: Subscription, model: ModelInfo, family: Family,
        rid: str, deadline: float, shrink: int = 0,
    ) -> Attempt:
        max_model_len = model.max_model_len or self.health.connection.context_length
        total = self.budgets.total(model.id, max_model_len, self.settings, shrink)
        snippets = await gather_context(self.context, self.settings, req.uri, req.row, doc.language_id, family, total)
        budget = total.less(context_tokens(snippets))
        window = build_window(doc, req.row, req.col, budget, req.insert, req.replace_from)
        if "\x00" in window.prefix or "\x00" in window.suffix:
            return Attempt(None)  # binary content: nothing sensible to complete
        if (hit := self.cache.typed_ahead(req.uri, window.prefix, window.suffix)) is not None:
            return Attempt(hit)
        prompt = render_prompt(req.uri, doc.language_id, family, window, snippets, self.health.backend.on_loopback)
        key = (model.id, family.name, prompt)
        if (cached := self.cache.get(key)) is not None:
            return Attempt(cached)
        gen, typed = sub.reusable(window)
        if gen is None:
            if req.automatic:
                await sub.ticket.sleep(self.debounce_ms() / 1000)
            gen = sub.use(self._start(rid, model, family, prompt, window, doc.language_id))
        try:
            await sub.ticket.wait(gen.task, deadline - asyncio.get_running_loop().time())
        except TimeoutError:
            log.info("[%s] wall-clock cap reached after %d chunks", rid, gen.chunks)
            return Attempt(gen.partial() or None)
        except BackendError as exc:
            if exc.kind is ErrorKind.CONTEXT_LENGTH and budget.prompt_tokens > 64:
                self.budgets.too_long(rid, model.id, total)
                return Attempt(None, too_long=True)
            if gen.backend is self.health.backend:
                raise  # reported by ``_complete``
            where = redact_url(gen.backend.endpoint)
            log.info("[%s] the completion on the replaced route %s ended: %s", rid, where, exc)
            return Attempt(None)
        return Attempt(self._finished(key, req, gen, typed, rid))

    def _finished(self, key: tuple[str, str, str], req: CompletionRequest, gen: Generation, typed: str,
                  rid: str) -> str | None:
        if gen.backend is self.health.backend:  # a replaced route's answer says nothing of the new one
            self.health.outcome(None)
        text = gen.result
        self.cache.put(key, req.uri, gen.prefix, gen.suffix, text)
        answer = remainder(text, typed) if typed else text
        self._log_done(rid, gen, req.arrived, answer)
        return answer or None

    def _start(
        self, rid: str, model: ModelInfo, family: Family, prompt: str, window: Window, language: str
    ) -> Generation:
        tuned = self.learned(language, self.settings.max_tokens) if self.settings.learn else Tuned()
        priority = self.health.connection.priority
        params = completion_params(self.settings, family.stop, priority, tuned.max_tokens, prompt)
        params["model"] = model.id  # the health's served model (the backend keeps none)
        stages = stages_for(family, window, self.settings.max_lines, self.settings.ablate, tuned.single_line)
        log.debug("[%s] start: %d prompt chars, family %s", rid, len(prompt), family.name)

        def on_loop() -> None:
            log.warning("[%s] repetition loop cut; %d recent", rid, self.loops.record(model.id))

        return Generation(
            self.health.backend, prompt, params, stages, finisher(window), window.prefix, window.suffix, rid, on_loop,
            self.turns,
        )

    def _log_done(self, rid: str, gen: Generation, t0: float, answer: str | None) -> None:
        total = (time.monotonic() - t0) * 1000
        self.status.latency(total)
        ttft = f"{gen.first_token_s * 1000:.0f}" if gen.first_token_s is not None else "-"
        log.info(
            "[%s] done in %.0f ms (ttft %s ms, %d chunks, cut=%s, %d chars)",
            rid, total, ttft, gen.chunks, gen.cut_reason, len(answer or ""),
        )

