"""One streamed answer, for chat and edit alike (chat/service.py gathers what to ask; this sends
it and streams the answer back).

- ``/v1/chat/completions`` first. When the engine cannot apply a chat template (TGI's "Template
  not found", 404, a base model) the conversation is rendered with our template and sent to
  ``/v1/completions``; the fallback is remembered for that endpoint and model, and said once.
- Every delta passes the loop guard (streaming/drive.py, shared with completion); a loop closes
  the stream and the answer ends "loop-cut".
- At most ``chat.maxConcurrent`` answers stream at once (chat/limiter.py).
- On a vLLM engine (priorities on) a chat answer steps aside while this server's completions
  run, and continues after (turns.py): completion ahead of chat.
- Cancellation closes the engine stream; the partial answer is returned, "cancelled".
- One route per answer: the backend it starts on is kept, with a lease on its HTTP client
  (backend/connection.py ``LeasedClient``), until it ends, continuations after a completion's turn
  included. A route change meanwhile (a model picked, the engine back on another port) lets it
  finish there; if that endpoint is gone the answer ends "error" with what came so far, and that
  failure is not held against the new route (``_outcome``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from ..backend import Backend, BackendError, ErrorKind
from ..backend.client import Chunk
from ..backend.health import Health
from ..config import ChatSettings
from ..repetition import LoopHealth
from ..sampling import PRIORITY, chat_params
from ..status import ServerStatus
from ..streaming import Pipeline
from ..streaming.drive import Drive
from ..streaming.loops import is_loop, loop_detectors
from ..tokens import estimate_tokens
from ..turns import Turns
from .limiter import Limiter
from .requests import ChatResult
from .templates import render_chat, resolve_template

log = logging.getLogger(__name__)
FALLBACK_KINDS = {ErrorKind.TEMPLATE, ErrorKind.NOT_FOUND}


class Answers:
    def __init__(self, settings: ChatSettings, health: Health, status: ServerStatus, loops: LoopHealth,
                 turns: Turns) -> None:
        self.health, self.status, self.loops, self.turns = health, status, loops, turns
        self.fallback: set[tuple[str, str]] = set()  # (endpoint, model) without a usable chat template
        self.streams = Limiter(settings.max_concurrent)  # one for the server's life
        self.reconfigure(settings)

    def reconfigure(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.streams.capacity = settings.max_concurrent

    async def answer(
        self,
        messages: list[dict[str, str]],
        on_delta: Callable[[str], None],
        max_tokens: int | None = None,
        temperature: float | None = None,
        model: str | None = None,
        kind: str = "chat",
    ) -> ChatResult:
        """Stream an answer to ``messages`` (already trimmed); ``on_delta`` gets each new piece.
        ``model``: the request's choice, else ``chat.model``, else the endpoint's model."""
        model = model or self.settings.model or (await self.health.model()).id
        result = ChatResult("", model, "stop", sum(estimate_tokens(m["content"]) for m in messages))
        template = resolve_template(model, self.settings.template)
        priority = PRIORITY[kind] if self.health.connection.priority else None
        params = chat_params(self.settings, model, template.repetition_penalty, self.loops, max_tokens, temperature,
                             priority)
        drive = Drive(Pipeline(loop_detectors()), on_delta, lambda: log.warning(
            "chat: repetition loop cut; %d recent for %s", self.loops.record(model), model))
        async with self.streams:
            backend = self.health.backend  # this answer's route, taken once it may stream (module doc)
            try:
                async with backend.client.lease():
                    yielding = kind == "chat" and priority is not None  # priorities on: a vLLM engine
                    await drive.run(self._stream(backend, model, messages, params, result, yielding))
                self._outcome(backend, None)
            except asyncio.CancelledError:
                result.finish_reason = "cancelled"
            except BackendError as exc:
                result.finish_reason, result.error = "error", str(exc)
                self._outcome(backend, exc)
        result.content, result.completion_tokens = drive.pipeline.text, drive.chunks
        if drive.finish_reason == "length" and result.finish_reason == "stop":
            result.finish_reason = "length"
        if is_loop(drive.cut_reason):
            result.finish_reason = "loop-cut"
        return result

    def _outcome(self, backend: Backend, exc: BackendError | None) -> None:
        """How the answer ended, for the endpoint's health, while ``backend`` is still its route:
        a replaced route's failure (its endpoint gone) says nothing of the new one."""
        if backend is self.health.backend:
            self.health.outcome(exc)
        elif exc is not None:
            log.info("chat: the answer on the replaced route %s ended: %s", backend.endpoint, exc)

    async def _stream(
        self, backend: Backend, model: str, messages: list[dict[str, str]], params: dict[str, Any],
        result: ChatResult, yielding: bool = False,
    ) -> AsyncGenerator[Chunk, None]:
        key = (backend.endpoint, model)
        budget = int(params["max_tokens"])
        if key not in self.fallback:
            got_any = False
            try:
                chat = self._taking_turns(lambda sent, left: _chat_call(backend, messages, params, sent, left), budget,
                                          yielding)
                async for chunk in chat:
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
        result.via = "completions"
        prompt = render_chat(template, messages)
        async for chunk in self._taking_turns(lambda sent, left: backend.stream_completion(
                prompt + sent, stop=list(template.stop), **{**params, "max_tokens": left}), budget, yielding):
            yield chunk

    async def _taking_turns(self, open_stream: Callable[[str, int], AsyncIterator[Chunk]], budget: int,
                            yielding: bool) -> AsyncGenerator[Chunk, None]:
        """The answer's chunks; with ``yielding``, the stream closes as soon as a completion starts
        and continues from the text so far when it is the chat's turn again (turns.py)."""
        sent, count = "", 0
        while True:
            async with contextlib.aclosing(open_stream(sent, max(1, budget - count))) as stream:  # type: ignore[type-var]
                async for chunk in _until(stream, self.turns.completion_began if yielding else None):
                    if chunk is None:
                        break
                    sent, count = sent + chunk.text, count + 1
                    yield chunk
                else:
                    return
            log.debug("chat: steps aside for a completion after %d chunks", count)
            await self.turns.wait_for_chat_turn()


def _chat_call(backend: Backend, messages: list[dict[str, str]], params: dict[str, Any], sent: str,
               left: int) -> AsyncIterator[Chunk]:
    if not sent:
        return backend.stream_chat(messages, **params)
    partial = [*messages, {"role": "assistant", "content": sent}]  # vLLM continues the answer
    return backend.stream_chat(partial, **{**params, "max_tokens": left, "continue_final_message": True,
                                           "add_generation_prompt": False})


async def _until(stream: AsyncIterator[Chunk], event: Callable[[], Awaitable[None]] | None,
                 ) -> AsyncGenerator[Chunk | None, None]:
    """``stream``'s chunks, then ``None`` if ``event`` happens first (the stream is left open
    for the caller to close)."""
    if event is None:
        async for chunk in stream:
            yield chunk
        return
    while True:
        nxt: asyncio.Future[Any] = asyncio.ensure_future(anext(stream, None))
        happened: asyncio.Future[Any] = asyncio.ensure_future(event())
        await asyncio.wait([nxt, happened], return_when=asyncio.FIRST_COMPLETED)
        happened.cancel()
        if not nxt.done():
            nxt.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await nxt
            yield None
            return
        got: Chunk | None = nxt.result()
        if got is None:
            return
        yield got
