"""Chat: one streamed answer, with the loop guard, the template fallback and a concurrency cap.

- ``/v1/chat/completions`` first. When the engine cannot apply a chat template (TGI's "Template
  not found", 404, a base model) the conversation is rendered with our template and sent to
  ``/v1/completions``; the fallback is remembered for that endpoint and model, and said once.
- Every delta passes the loop guard; a loop closes the stream and the answer ends "loop-cut".
- At most ``chat.maxConcurrent`` answers stream at once, so inline completion stays fast.
- ``$/cancelRequest`` closes the engine stream; the partial answer is returned, "cancelled".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ..backend import Backend, BackendError, ErrorKind
from ..backend.client import Chunk
from ..completion.context import estimate_tokens
from ..config import ChatSettings, Config
from ..health import LoopHealth
from ..status import StatusReporter
from ..streaming import Pipeline
from ..streaming.loops import is_loop, loop_detectors
from .templates import render_chat, resolve_template

log = logging.getLogger(__name__)
FALLBACK_KINDS = {ErrorKind.TEMPLATE, ErrorKind.NOT_FOUND}


class Limiter:
    """At most ``capacity`` holders at once; the capacity may change while streams run (a
    settings change must not reset the count, as a new semaphore would). Leaving never waits,
    so a cancelled holder always frees its place."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.active = capacity, 0
        self._waiters: list[asyncio.Future[None]] = []

    async def __aenter__(self) -> None:
        while self.active >= self.capacity:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


@dataclass
class ChatResult:
    content: str
    model: str
    finish_reason: str  # stop | length | cancelled | loop-cut | error
    prompt_tokens: int = 0
    completion_tokens: int = 0
    via: str = "chat"  # "chat" or "completions" (template fallback)
    excluded: list[str] = field(default_factory=list)
    excluded_why: dict[str, str] = field(default_factory=dict)  # uri -> why it was left out
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "content": self.content,
            "model": self.model,
            "finishReason": self.finish_reason,
            "usage": {"promptTokens": self.prompt_tokens, "completionTokens": self.completion_tokens},
            "endpoint": self.via,
        }
        if self.excluded:
            out["excludedContext"] = self.excluded
            out["excludedWhy"] = self.excluded_why
        if self.error:
            out["error"] = self.error
        return out


class ChatService:
    def __init__(self, config: Config, backend: Backend, status: StatusReporter, health: LoopHealth) -> None:
        self.status, self.health = status, health
        self.fallback: set[tuple[str, str]] = set()  # (endpoint, model) without a usable chat template
        self.streams = Limiter(config.chat.max_concurrent)  # one for the server's life
        self.reconfigure(config, backend)

    def reconfigure(self, config: Config, backend: Backend) -> None:
        self.config, self.backend = config, backend
        self.settings: ChatSettings = config.chat
        self.streams.capacity = self.settings.max_concurrent

    async def budget(self, max_tokens: int) -> int:
        info = await self.backend.model_info()
        length = info.max_model_len or self.config.backend.context_length
        return max(256, length - max_tokens - 16)

    async def answer(
        self,
        messages: list[dict[str, str]],
        on_delta: Callable[[str], None],
        max_tokens: int | None = None,
        temperature: float | None = None,
        model: str | None = None,
    ) -> ChatResult:
        """Stream an answer to ``messages`` (already trimmed); ``on_delta`` gets each new piece.
        ``model``: the request's choice, else ``chat.model``, else the endpoint's model."""
        model = model or self.settings.model or (await self.backend.model_info()).id
        result = ChatResult("", model, "stop", sum(estimate_tokens(m["content"]) for m in messages))
        params: dict[str, Any] = {
            "max_tokens": max_tokens or self.settings.max_tokens,
            "temperature": self.settings.temperature if temperature is None else temperature,
            "top_p": self.settings.top_p,
            "model": model,
        }
        template = resolve_template(model, self.settings.template)
        params.update(self.health.penalties(model, 1.1 if template.name == "chatml" else 1.05))
        pipe = Pipeline(loop_detectors())
        sent = 0
        async with self.streams:
            try:
                async for chunk in self._stream(model, messages, params, result):
                    result.completion_tokens += 1
                    if chunk.finish_reason == "length":
                        result.finish_reason = "length"
                    pipe.feed(chunk.text)
                    if len(pipe.text) > sent:
                        on_delta(pipe.text[sent:])
                        sent = len(pipe.text)
                    if pipe.cut is not None:
                        break
            except asyncio.CancelledError:
                result.finish_reason = "cancelled"
            except BackendError as exc:
                result.finish_reason, result.error = "error", str(exc)
        result.content = pipe.text
        if pipe.cut is not None and is_loop(pipe.cut.reason):
            result.finish_reason = "loop-cut"
            self.health.record(model)
        return result

    async def _stream(
        self, model: str, messages: list[dict[str, str]], params: dict[str, Any], result: ChatResult
    ) -> AsyncIterator[Chunk]:
        key = (self.backend.endpoint, model)
        if key not in self.fallback:
            got_any = False
            try:
                async with contextlib.aclosing(self.backend.stream_chat(messages, **params)) as stream:
                    async for chunk in stream:
                        got_any = True
                        yield chunk
                return
            except BackendError as exc:
                if got_any or exc.kind not in FALLBACK_KINDS:
                    raise
                self.fallback.add(key)
                note = f"{model}: chat template unavailable ({exc.message[:120]}); using vLLM Companion's own template"
                log.warning(note)
                self.status.tell_user(note, error=False)
        template = resolve_template(model, self.settings.template)
        prompt = render_chat(template, messages)
        result.via = "completions"
        started = time.perf_counter()
        async with contextlib.aclosing(
            self.backend.stream_completion(prompt, stop=list(template.stop), **params)
        ) as stream:
            async for chunk in stream:
                yield chunk
        log.debug("fallback answer in %.0f ms", (time.perf_counter() - started) * 1000)
