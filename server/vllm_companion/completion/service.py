"""Inline completion, from cursor to cleaned-up text: the domain code behind the LSP handlers.

Order per request: prefilter -> window (token budget) -> typed-ahead -> cache -> reuse an
in-flight generation -> debounce (automatic triggers only) -> new generation -> wall-clock cap.
Every path ends in bounded time with text or ``None``; backend failures become status updates.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ..backend import Backend, BackendError, ErrorKind, ModelInfo
from ..config import Config
from ..documents import DocumentStore
from ..health import LoopHealth
from ..prompts import PLAIN, Family, FimContext, render_fim, resolve_family
from ..status import State, StatusReporter
from ..streaming.loops import is_loop
from .cache import CompletionCache, remainder, typed_since
from .context import Budget, Window, build_window
from .fim_check import unknown_fim_tokens
from .generation import Generation
from .postprocess import finisher, stages_for
from .slot import Slot, Superseded, Ticket

log = logging.getLogger(__name__)
_ids = itertools.count(1)


class _Retry(Exception):
    """The engine refused the prompt's length: build a smaller one."""


@dataclass(frozen=True)
class CompletionRequest:
    uri: str
    row: int
    col: int  # code points
    automatic: bool = True
    insert: str = ""  # text of the editor's selected suggestion, treated as typed
    replace_from: int | None = None  # where that suggestion starts on the line (it replaces to col)


class CompletionService:
    def __init__(
        self,
        config: Config,
        backend: Backend,
        documents: DocumentStore,
        status: StatusReporter,
        health: LoopHealth | None = None,
    ):
        self.documents, self.status = documents, status
        self.health = health or LoopHealth()
        self.gate: Callable[[], bool] = lambda: True  # False while a launched engine is not ready
        self.slots: defaultdict[str, Slot] = defaultdict(Slot)
        self.families: dict[str, Family] = {}
        self.prompt_caps: dict[str, int] = {}  # per model, after a context-length rejection
        self._family_lock = asyncio.Lock()
        self.reconfigure(config, backend)

    def reconfigure(self, config: Config, backend: Backend) -> None:
        self.config, self.backend = config, backend
        self.settings = config.completion
        self.cache = CompletionCache(self.settings.cache_size, self.settings.cache_ttl_s)
        self.families.clear()

    async def complete(self, req: CompletionRequest) -> str | None:
        for _ in range(4):  # a context-length rejection retries with half the budget
            try:
                return await self._complete(req)
            except _Retry:
                continue
        return None

    async def _complete(self, req: CompletionRequest) -> str | None:
        rid = f"c{next(_ids)}"
        t0 = time.perf_counter()
        doc = self.documents.get(req.uri)
        if doc is None or not self.settings.enabled or doc.language_id in self.settings.disabled_languages:
            return None
        if not self.gate():
            return None  # the local engine is still starting: answer at once, with nothing
        slot = self.slots[req.uri]
        ticket = slot.take()
        held = slot.generation.acquire() if slot.generation else None
        try:
            if _skip_here(doc.line(req.row), req.col) and not req.insert:
                return None
            model = await self._model()
            if model is None:
                return None
            family = await self._family(model)
            budget = Budget.for_model(
                model.max_model_len or self.config.backend.context_length,
                self.settings.max_tokens,
                min(self.settings.max_prompt_tokens, self.prompt_caps.get(model.id, 1 << 30)),
            )
            window = build_window(doc, req.row, req.col, budget, req.insert, req.replace_from)
            if "\x00" in window.prefix or "\x00" in window.suffix:
                return None  # binary content: nothing sensible to complete
            if (hit := self.cache.typed_ahead(req.uri, window.prefix, window.suffix)) is not None:
                log.debug("[%s] typed-ahead hit", rid)
                return hit
            others = self._other_files(req.uri, family, doc.language_id, budget)
            prompt = render_fim(family, FimContext(window.prefix, window.suffix, _path(req.uri), others))
            key = (model.id, family.name, prompt)
            if (cached := self.cache.get(key)) is not None:
                log.debug("[%s] cache hit", rid)
                return cached
            gen, typed = _reusable(held, window)
            if gen is None:
                if held is not None:
                    held.release()
                    held = None
                if req.automatic:
                    await ticket.sleep(self.settings.debounce_ms / 1000)
                gen = self._start(rid, model, family, prompt, window)
                slot.generation = held = gen.acquire()
            text = await self._await(ticket, gen, model, budget, rid)
            if text is None:
                return None
            if is_loop(gen.cut_reason):
                self._loop_seen(model, gen)
            self.cache.put(key, req.uri, gen.prefix, gen.suffix, text)
            answer = remainder(text, typed) if typed else text
            self._log_done(rid, gen, t0, answer)
            return answer or None
        except Superseded:
            log.debug("[%s] superseded", rid)
            return None
        except BackendError as exc:
            self._backend_failed(exc)
            return None
        finally:
            if held is not None:
                held.release()

    async def _await(self, ticket: Ticket, gen: Generation, model: ModelInfo, budget: Budget, rid: str) -> str | None:
        try:
            text = await ticket.wait(gen.task, self.settings.timeout_ms / 1000)
        except TimeoutError:
            log.info("[%s] wall-clock cap reached after %d tokens", rid, gen.tokens)
            return gen.partial() or None
        except BackendError as exc:
            if exc.kind is ErrorKind.CONTEXT_LENGTH and budget.prompt_tokens > 64:
                log.warning("[%s] prompt too long for the engine: halving the budget for %s", rid, model.id)
                self.prompt_caps[model.id] = budget.halved().prompt_tokens
                raise _Retry from exc
            raise
        except asyncio.CancelledError:
            raise
        self.status.update(State.READY, message="")
        return text

    def _start(self, rid: str, model: ModelInfo, family: Family, prompt: str, window: Window) -> Generation:
        params: dict[str, object] = {
            "max_tokens": self.settings.max_tokens,
            "temperature": self.settings.temperature,
            "top_p": self.settings.top_p,
            **self.health.penalties(model.id, family.repetition_penalty),
        }
        if family.stop:
            params["stop"] = list(family.stop)
        stages = stages_for(family, window, self.settings.max_lines)
        log.debug("[%s] start: %d prompt chars, family %s", rid, len(prompt), family.name)
        return Generation(
            self.backend, prompt, params, stages, finisher(window), window.prefix, window.suffix, rid
        )

    async def _model(self) -> ModelInfo | None:
        try:
            return await self.backend.model_info()
        except BackendError as exc:
            self._backend_failed(exc)
            return None

    async def _family(self, model: ModelInfo) -> Family:
        if (known := self.families.get(model.id)) is not None:
            return known
        async with self._family_lock:  # one FIM-token check per model, however many requests wait
            if (known := self.families.get(model.id)) is not None:
                return known
            return await self._check_family(model)

    async def _check_family(self, model: ModelInfo) -> Family:
        family = resolve_family(model.id, self.settings.family)
        if family.is_fim:
            bad = await unknown_fim_tokens(self.backend, family)
            if bad:
                msg = (
                    f"{model.id} does not have the {family.name} FIM tokens ({', '.join(bad)}): "
                    "using prefix-only prompts. Set completion.family to the model's real family."
                )
                self.status.tell_user(msg, error=False)
                log.warning(msg)
                family = PLAIN
        self.families[model.id] = family
        self.status.update(State.READY, model=model.id, family=family.name)
        return family

    def _other_files(self, uri: str, family: Family, language: str, budget: Budget) -> tuple[tuple[str, str], ...]:
        if not (self.settings.multi_file_context and family.repo_header):
            return ()
        room = budget.prompt_tokens // 8 * 3  # characters: about a quarter of the prompt budget
        out: list[tuple[str, str]] = []
        for doc in self.documents.others(uri, language)[:4]:
            head = "".join(doc.lines[:80])[: max(0, room)]
            if head:
                out.append((_path(doc.uri), head))
                room -= len(head)
        return tuple(out)

    def _loop_seen(self, model: ModelInfo, gen: Generation) -> None:
        recent = self.health.record(model.id)
        log.warning("[%s] repetition loop cut (%s) after %d chunks; %d recent", gen.request_id,
                    gen.cut_reason, gen.tokens, recent)

    def _backend_failed(self, exc: BackendError) -> None:
        log.warning("backend: %s", exc)
        state = State.UNAVAILABLE if exc.kind.transient else State.ERROR
        self.status.update(state, message=str(exc))
        if exc.kind is ErrorKind.UNAVAILABLE:
            self.backend.forget_model()
        if not exc.kind.transient:
            self.status.tell_user(f"vLLM Companion: {exc}")

    def _log_done(self, rid: str, gen: Generation, t0: float, answer: str | None) -> None:
        total = (time.perf_counter() - t0) * 1000
        self.status.latency(total)
        ttft = f"{gen.first_token_s * 1000:.0f}" if gen.first_token_s is not None else "-"
        log.info(
            "[%s] done in %.0f ms (ttft %s ms, %d chunks, cut=%s, %d chars)",
            rid, total, ttft, gen.tokens, gen.cut_reason, len(answer or ""),
        )


def _reusable(gen: Generation | None, window: Window) -> tuple[Generation | None, str]:
    """The held generation if the new cursor just extends its prefix with what it is generating."""
    if gen is None or gen.task.cancelled():
        return None, ""
    typed = typed_since(gen.prefix, gen.suffix, window.prefix, window.suffix)
    if typed is None:
        return None, ""
    if gen.task.done():
        return None, ""  # finished generations are served by the cache and typed-ahead
    so_far = gen.text
    if so_far.startswith(typed) or (typed.startswith(so_far) and not gen.pipeline.cut):
        return gen, typed
    return None, ""


def _skip_here(line: str, col: int) -> bool:
    """No completion in the middle of a word (Copilot's rule too)."""
    return col < len(line) and (line[col].isalnum() or line[col] == "_") and col > 0 and line[col - 1].isalnum()


def _path(uri: str) -> str:
    return uri.rsplit("/", 1)[-1] if "/" in uri else uri
