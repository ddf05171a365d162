"""Chat and inline edit: context gathered through the privacy filter, one streamed answer, with
the loop guard, the template fallback and a concurrency cap.

- Context: the selection and the attached files, open in the editor or (inside the workspace
  only) on disk; secret files left out and said so; inline secrets redacted (privacy.py).
- ``/v1/chat/completions`` first. When the engine cannot apply a chat template (TGI's "Template
  not found", 404, a base model) the conversation is rendered with our template and sent to
  ``/v1/completions``; the fallback is remembered for that endpoint and model, and said once.
- Every delta passes the loop guard (streaming/drive.py, shared with completion); a loop closes
  the stream and the answer ends "loop-cut".
- At most ``chat.maxConcurrent`` answers stream at once (chat/limiter.py).
- On a vLLM engine (priorities on) a chat answer steps aside while this server's completions
  run, and continues after (turns.py): completion ahead of chat.
- Cancellation closes the engine stream; the partial answer is returned, "cancelled".
- The endpoint's health (backend/health.py) is asked first: a launched engine not ready, or an
  endpoint known down or asking to wait, answers a clear error at once (not after a timeout);
  every outcome reaches it (the same path as completion's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from ..backend import BackendError, ErrorKind
from ..backend.client import Chunk
from ..backend.health import Health
from ..config import ChatSettings, Config
from ..documents import Document, DocumentStore
from ..privacy import Privacy, file_name, path_of, redact
from ..repetition import LoopHealth
from ..sampling import PRIORITY, chat_params
from ..status import ServerStatus
from ..streaming import Pipeline
from ..streaming.drive import Drive
from ..streaming.loops import is_loop, loop_detectors
from ..tokens import chat_budget, estimate_tokens
from ..turns import Turns
from .context import SYSTEM_PROMPT, Snippet, build_messages
from .edit import edit_messages, extract_code
from .limiter import Limiter
from .rebase import Anchor
from .requests import ChatRequest, ChatResult, EditConflict, EditRefused, EditRequest, EditResult
from .templates import render_chat, resolve_template

log = logging.getLogger(__name__)
FALLBACK_KINDS = {ErrorKind.TEMPLATE, ErrorKind.NOT_FOUND}
MAX_FILES = 32
MAX_EDIT_CHARS = 64 * 1024  # an edit's selection: the model writes it all again (about 16k tokens)


class ChatService:
    def __init__(
        self,
        config: Config,
        health: Health,
        status: ServerStatus,
        loops: LoopHealth,
        documents: DocumentStore,
        privacy: Privacy,
        turns: Turns,
    ) -> None:
        self.health, self.status, self.loops = health, status, loops
        self.documents, self.privacy, self.turns = documents, privacy, turns
        self.fallback: set[tuple[str, str]] = set()  # (endpoint, model) without a usable chat template
        self.streams = Limiter(config.chat.max_concurrent)  # one for the server's life
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.settings: ChatSettings = config.chat
        self.streams.capacity = self.settings.max_concurrent

    # -- requests ------------------------------------------------------------------------------
    async def chat(self, req: ChatRequest, on_delta: Callable[[str], None]) -> ChatResult:
        """Answer a conversation with its context. Raises ``BackendError`` before any text."""
        self._available()
        snippets, refused = self._snippets(req)
        max_tokens = req.max_tokens or self.settings.max_tokens
        try:
            model = req.model or self.settings.model or (await self.health.model()).id
            length = await self.health.context_length(model, self.health.connection.context_length)
        except BackendError as exc:
            self.health.outcome(exc)
            raise
        budget = chat_budget(length, max_tokens)
        history = [{"role": m["role"], "content": m["content"]} for m in req.messages]
        system = self.settings.system_prompt or _system(history)
        messages, excluded = build_messages(history, snippets, budget, system, self.privacy)
        result = await self.answer(messages, on_delta, max_tokens=max_tokens, model=model)
        result.excluded = excluded + [uri for uri, _ in refused]
        result.excluded_why = {uri: "a secret file" for uri in excluded} | dict(refused)
        return result

    async def edit(self, req: EditRequest, on_delta: Callable[[str], None]) -> EditResult:
        """Rewrite a selection. Secrets in it stay here: redacted on the way out, put back after.
        The range is read here, in the event-loop step the request arrived in (lsp/chat.py took it
        just before); the edit targets the text as it is once the model has answered: moved if
        the user typed elsewhere meanwhile, refused if the rewritten text changed (rebase.py)."""
        uri = req.selection.uri
        doc = self._editable(req)
        self._available()
        code = doc.text_between(req.selection.start, req.selection.end)
        if len(code) > MAX_EDIT_CHARS:  # redacting 8 MB held the event loop 3.6 s
            raise EditRefused(f"the selection is {len(code)} characters; an edit rewrites at most {MAX_EDIT_CHARS}")
        hidden = redact(code)
        messages = edit_messages(redact(req.instruction).text, hidden.text, path_of(uri), doc.language_id)
        with Anchor(doc, req.selection.start, req.selection.end) as anchor:
            result = await self.answer(messages, on_delta, temperature=0.1, kind="edit")
        new_text = hidden.restore(extract_code(result.content, hidden.text))
        if result.finish_reason == "error" and not result.content:  # the edge answers the engine's failure
            return EditResult(result, new_text, doc.version, req.selection.start, req.selection.end)
        if self.documents.get(uri) is not doc:
            raise EditConflict(f"{path_of(uri)} was closed while the model wrote; nothing was applied")
        span = anchor.where(code)
        if span is None:
            lines = f"lines {req.selection.start[0] + 1}-{req.selection.end[0] + 1}"
            raise EditConflict(f"{path_of(uri)} changed in the edited text ({lines} when asked) while the model "
                               "wrote; nothing was applied")
        return EditResult(result, new_text, doc.version, *span)

    def _available(self) -> None:
        """The health's gate, as completion's: no waiting on an endpoint known not to answer."""
        if (why := self.health.refusal()) is not None:
            raise BackendError(ErrorKind.UNAVAILABLE, why)

    def _editable(self, req: EditRequest) -> Document:
        """The document an edit may rewrite, at the version the client took the range on."""
        uri = req.selection.uri
        doc = self.documents.get(uri)
        if doc is None:
            raise EditRefused(f"document not open: {uri}")
        if self.privacy.is_secret(uri):
            raise EditRefused(f"{path_of(uri)} is a secret file: vLLM Companion never sends it to the engine")
        if req.version is not None and req.version != doc.version:
            raise EditConflict(f"{path_of(uri)}: the range was taken on version {req.version} but the document is "
                               f"at version {doc.version}; nothing was applied")
        return doc

    def _snippets(self, req: ChatRequest) -> tuple[list[Snippet], list[tuple[str, str]]]:
        """Context from the selection and the files, and the files refused (with why)."""
        out: list[Snippet] = []
        refused: list[tuple[str, str]] = []
        if req.selection is not None and (doc := self.documents.get(req.selection.uri)) is not None:
            (r0, _), (r1, _) = req.selection.start, req.selection.end
            text = doc.text_between(req.selection.start, req.selection.end)
            out.append(Snippet(doc.uri, text, doc.language_id, f"selection, lines {r0 + 1}-{r1 + 1}"))
        for uri in [u for u in req.files if u][:MAX_FILES]:
            if (doc := self.documents.get(uri)) is not None:  # open: build_messages filters secrets
                out.append(Snippet(uri, doc.text, doc.language_id))
                continue
            path, why = self.privacy.readable(uri)
            content = self.privacy.read(uri) if path is not None else None
            if content is None:
                refused.append((uri, why or "not text"))
            else:
                out.append(Snippet(uri, content, os.path.splitext(file_name(uri))[1].lstrip(".")))
        return out, refused

    # -- one streamed answer -------------------------------------------------------------------
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
            try:
                yielding = kind == "chat" and priority is not None  # priorities on: a vLLM engine
                await drive.run(self._stream(model, messages, params, result, yielding))
                self.health.outcome(None)
            except asyncio.CancelledError:
                result.finish_reason = "cancelled"
            except BackendError as exc:
                result.finish_reason, result.error = "error", str(exc)
                self.health.outcome(exc)
        result.content, result.completion_tokens = drive.pipeline.text, drive.chunks
        if drive.finish_reason == "length" and result.finish_reason == "stop":
            result.finish_reason = "length"
        if is_loop(drive.cut_reason):
            result.finish_reason = "loop-cut"
        return result

    async def _stream(
        self, model: str, messages: list[dict[str, str]], params: dict[str, Any], result: ChatResult,
        yielding: bool = False,
    ) -> AsyncGenerator[Chunk, None]:
        backend = self.health.backend  # the connection this answer started on
        key = (backend.endpoint, model)
        budget = int(params["max_tokens"])
        if key not in self.fallback:
            got_any = False
            try:
                chat = self._taking_turns(lambda sent, left: self._chat_call(messages, params, sent, left), budget,
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

    def _chat_call(self, messages: list[dict[str, str]], params: dict[str, Any], sent: str,
                   left: int) -> AsyncIterator[Chunk]:
        if not sent:
            return self.health.backend.stream_chat(messages, **params)
        partial = [*messages, {"role": "assistant", "content": sent}]  # vLLM continues the answer
        return self.health.backend.stream_chat(partial, **{**params, "max_tokens": left, "continue_final_message": True,
                                                    "add_generation_prompt": False})

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


def _system(history: list[dict[str, str]]) -> str:
    """Our system prompt, then any the client sent (merged: the client's cannot drop ours)."""
    given = [m["content"] for m in history if m["role"] == "system"]
    return "\n\n".join([SYSTEM_PROMPT, *given])
