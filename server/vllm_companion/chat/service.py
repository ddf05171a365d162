"""Chat and inline edit: what to ask (context gathered through the privacy filter, the budget,
the edit's range and its secrets); chat/answer.py sends it and streams the answer back (the loop
guard, the template fallback, the concurrency cap, turns with completion, one route per answer).

- Context: the selection and the attached files, open in the editor or (inside the workspace
  only) on disk; secret files left out and said so; inline secrets redacted (privacy.py).
- The endpoint's health (backend/health.py) is asked first: a launched engine not ready, or an
  endpoint known down or asking to wait, answers a clear error at once (not after a timeout);
  every outcome reaches it (the same path as completion's).
- An edit's range follows the document while the model writes (chat/rebase.py); a change to the
  rewritten text refuses it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from ..backend import BackendError, ErrorKind
from ..backend.health import Health
from ..config import ChatSettings, Config
from ..documents import Document, DocumentStore
from ..privacy import Privacy, file_name, path_of, redact
from ..repetition import LoopHealth
from ..status import ServerStatus
from ..tokens import chat_budget
from ..turns import Turns
from .answer import Answers
from .context import SYSTEM_PROMPT, Snippet, build_messages
from .edit import edit_messages, extract_code
from .rebase import Anchor
from .requests import ChatRequest, ChatResult, EditConflict, EditRefused, EditRequest, EditResult

log = logging.getLogger(__name__)
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
        self.health, self.documents, self.privacy = health, documents, privacy
        self.answers = Answers(config.chat, health, status, loops, turns)  # one for the server's life
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.settings: ChatSettings = config.chat
        self.answers.reconfigure(config.chat)

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
        result = await self.answers.answer(messages, on_delta, max_tokens=max_tokens, model=model)
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
        if len(req.instruction) > MAX_EDIT_CHARS:  # 10 MB took 1.2-1.8 s of the event loop to redact
            raise EditRefused(f"the instruction is {len(req.instruction)} characters; at most {MAX_EDIT_CHARS}")
        hidden = redact(code)
        messages = edit_messages(redact(req.instruction).text, hidden.text, path_of(uri), doc.language_id)
        with Anchor(doc, req.selection.start, req.selection.end) as anchor:
            result = await self.answers.answer(messages, on_delta, temperature=0.1, kind="edit")
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


def _system(history: list[dict[str, str]]) -> str:
    """Our system prompt, then any the client sent (merged: the client's cannot drop ours)."""
    given = [m["content"] for m in history if m["role"] == "system"]
    return "\n\n".join([SYSTEM_PROMPT, *given])
