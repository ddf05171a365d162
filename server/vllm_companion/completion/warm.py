"""Warm the engine's prefix cache when a document is opened or focused (issue 20, point 2).

The first completion in a newly opened file pays the prefill of its whole prompt: on a CPU
without AVX-512, 22 s for a 938-token prompt on the vLLM CPU build and 5.8 s on llama.cpp, both
past the 5 s cap, so the user got nothing; the same prompt again took 1.06 s and 0.10 s (prefix
cache). So on ``didOpen`` and on ``textDocument/didFocus`` (Copilot's clients send it on every
buffer switch) the head of the prompt the next completion will use is sent once, with
``max_tokens`` 1, for the engine to prefill and keep (vLLM's automatic prefix caching;
llama.cpp's server reuses the longest common prefix of its previous prompt).

Which head: the prompt of a completion at the start of the last line whose whole prefix fits
the budget (``head_row``), rendered exactly as a completion renders it (context, window, family,
redaction off the machine). A completion at any row above it starts with the same text, and the
window's top edge stays at line 0 (window.py), so its prompt head is the warmed one.

Rules, so a warm-up never costs the user a real completion:
- a real completion on this server ends it: the completion service calls ``stand_aside`` when a
  request arrives, and a completion or next-edit prediction that reaches the engine (turns.py)
  ends it too; ending it closes the stream, and the engine aborts the request;
- it is never sent while one runs, and at vLLM's lowest priority when priorities are on
  (``WARM_PRIORITY``, below chat), so it waits behind everything in the engine's queue;
- at most one is in flight, and it starts ``SETTLE_S`` after the last open/focus: a burst (an
  editor restoring 40 tabs) sends one request, for the document focused last;
- not twice for one document version, not for secret files, disabled languages, a paused server
  (``completion.enabled`` off), nor while the endpoint is known down or the engine not ready
  (``Health.refusal``); ``completion.warmOnOpen: false`` switches it off (a workspace may only
  switch it off: settings_trust.py).
- it reports nothing to the health: a warm-up that times out says nothing about the endpoint;
- its task is the warmer's alone: ``close`` (the completion service's ``aclose``, at shutdown)
  cancels and awaits it, and none starts after.

Engines and tests tell a warm-up by its OpenAI ``user`` field, ``WARM_USER`` (tests/fake_backend.py
keeps them apart from real requests). Measured in docs/performance.md ("Warming on open").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..backend import BackendError
from ..backend.health import Health
from ..config import CompletionSettings
from ..context import ContextGatherer, context_tokens
from ..documents import Document, DocumentStore
from ..privacy import Privacy
from ..sampling import PRIORITY, completion_params
from ..tokens import Budget, estimate_tokens
from ..turns import Turns
from .budgets import Budgets
from .prompt import gather_context, render_prompt
from .window import MAX_LINE_CHARS, build_window

log = logging.getLogger(__name__)
WARM_USER = "vllm-companion-warm"  # the request's OpenAI ``user`` field
WARM_PRIORITY = max(PRIORITY.values()) + 1  # vLLM: lower runs first; below every real request
SETTLE_S = 0.3  # after the last open/focus: a burst of them sends one warm-up
WARM_CAP_S = 60.0  # a warm-up's whole life (a cold CPU prefill took 22 s)
REMEMBERED = 512  # (document, version) pairs remembered as warmed


def head_row(doc: Document, budget: Budget) -> int:
    """The last row whose whole prefix (lines 0..row) fits the budget less the suffix's share:
    a completion there, or above, has a window starting at line 0."""
    room, used = budget.prompt_tokens - budget.suffix(), 0
    for row, line in enumerate(doc.lines):
        used += estimate_tokens(line[-MAX_LINE_CHARS:])
        if used > room:
            return row
    return max(0, len(doc.lines) - 1)


class Warmer:
    def __init__(
        self, health: Health, documents: DocumentStore, privacy: Privacy, context: ContextGatherer,
        budgets: Budgets, turns: Turns, settings: Callable[[], CompletionSettings],
    ) -> None:
        self.health, self.documents, self.privacy, self.context = health, documents, privacy, context
        self.budgets, self.turns, self.settings = budgets, turns, settings  # settings: the service's current
        self._task: asyncio.Task[None] | None = None
        self._pending: tuple[str, int] | None = None  # the (uri, version) in flight
        self._warmed: OrderedDict[str, int] = OrderedDict()  # uri -> version warmed
        self._closed = False

    def opened(self, uri: str) -> None:
        """``didOpen`` or ``didFocus``: warm this document's prompt head, in place of any other."""
        doc = self.documents.get(uri)
        if doc is None or self._closed or not self._wanted(doc):
            return
        key = (uri, doc.version)
        in_flight = self._task is not None and not self._task.done()
        if self._warmed.get(uri) == doc.version or (in_flight and self._pending == key):
            return  # this version is warm, or being warmed
        self.stand_aside()
        self._pending = key
        self._task = asyncio.ensure_future(self._warm(uri, doc.version))

    def stand_aside(self) -> None:
        """A real request arrived: the warm-up in flight (if any) ends now, its stream closed."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task, self._pending = None, None

    async def close(self) -> None:
        """The shutdown: the warm-up in flight ends (its stream closed), awaited; none starts after."""
        self._closed = True
        task = self._task
        self.stand_aside()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    def reset(self) -> None:
        """A new connection: the new engine's prefix cache holds none of what was warmed."""
        self._warmed.clear()
        self.stand_aside()

    def forget(self, uri: str) -> None:
        self._warmed.pop(uri, None)
        if self._pending is not None and self._pending[0] == uri:
            self.stand_aside()

    def _wanted(self, doc: Document) -> bool:
        s = self.settings()
        if not (s.warm_on_open and s.enabled) or doc.language_id in s.disabled_languages:
            return False
        return not self.privacy.is_secret(doc.uri) and self.health.refusal() is None

    async def _warm(self, uri: str, version: int) -> None:
        await asyncio.sleep(SETTLE_S)
        if self.turns.busy or self.health.refusal() is not None:
            return  # a real completion runs (it warms the engine itself), or the endpoint is down
        try:
            async with asyncio.timeout(WARM_CAP_S):
                request = await self._request(uri, version)
                if request is not None:
                    await self._send(*request)
        except (BackendError, TimeoutError) as exc:
            log.debug("warm-up of %s ended: %s", uri, exc)
            return  # not warmed: the next open or focus of this version may try again
        self._warmed[uri] = version
        self._warmed.move_to_end(uri)
        while len(self._warmed) > REMEMBERED:
            self._warmed.popitem(last=False)

    async def _request(self, uri: str, version: int) -> tuple[str, dict[str, Any]] | None:
        """The prompt head and parameters: as ``CompletionService._attempt`` builds them."""
        found = await self.health.model_and_family()
        doc = self.documents.get(uri)
        if found is None or doc is None or doc.version != version:
            return None
        (model, family), settings = found, self.settings()
        total = self.budgets.total(model.id, model.max_model_len or self.health.connection.context_length, settings)
        row = head_row(doc, total.less(total.context(settings.context_tokens)))
        snippets = await gather_context(self.context, settings, uri, row, doc.language_id, family, total)
        window = build_window(doc, row, 0, total.less(context_tokens(snippets)))
        if not window.prefix.strip() or "\x00" in window.prefix:
            return None  # nothing to warm (an empty file), or binary content
        prompt = render_prompt(uri, doc.language_id, family, window, snippets, self.health.backend.on_loopback)
        params = completion_params(settings, family.stop, False, 1, prompt)
        params.update(model=model.id, user=WARM_USER)
        if self.health.connection.priority:
            params["priority"] = WARM_PRIORITY
        return prompt, params

    async def _send(self, prompt: str, params: dict[str, Any]) -> None:
        """The request, until its one token, or until a completion runs (then closed)."""
        if self.turns.busy:
            return
        send = asyncio.ensure_future(self._drain(prompt, params))
        busy = asyncio.ensure_future(self.turns.completion_runs())
        try:
            await asyncio.wait({send, busy}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            send.cancel()
            busy.cancel()
            ended = await asyncio.gather(send, busy, return_exceptions=True)  # the stream is closed now
        if isinstance(ended[0], BackendError):
            raise ended[0]

    async def _drain(self, prompt: str, params: dict[str, Any]) -> None:
        async with contextlib.aclosing(self.health.backend.stream_completion(prompt, **params)) as stream:
            async for _ in stream:
                pass
