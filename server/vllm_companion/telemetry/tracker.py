"""What became of each suggestion: shown, accepted, partly accepted, dismissed, and how much of an
accepted one is still in the document 30 s and 2 min later.

Protocol (mirrors the Copilot language server, so clients that speak it work unchanged):
- every inline item carries ``command`` ``vllmCompanion.didAcceptCompletion`` with its id: the
  editor runs it (``workspace/executeCommand``) when the user accepts the item;
- ``textDocument/didShowCompletion`` ``{item}`` when the editor shows it;
- ``textDocument/didPartiallyAcceptCompletion`` ``{item, acceptedLength}`` for a word or line.
A shown suggestion is *dismissed* when another one is shown in the same document, or the
document closes, without it being accepted. Survival is the share of the accepted text's
characters still found, in order, around where it went (difflib matching blocks of ``MIN_RUN`` or
more characters).
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from ..documents import DocumentStore
from .store import Event, EventStore

log = logging.getLogger(__name__)
KEEP = 512  # suggestions remembered (ids the editor may still report on)
SURVIVAL_S = (30.0, 120.0)
MIN_RUN = 4  # characters: shorter matches are letters that happen to recur, not surviving text
_ids = itertools.count(1)


def cursor_kind(before: str, after: str) -> str:
    """Where the cursor was: mid-line (code after it), end-of-line, or an empty line."""
    if after.strip():
        return "mid-line"
    return "end-of-line" if before.strip() else "empty-line"


@dataclass
class Suggestion:
    id: str
    uri: str
    row: int
    col: int  # where the inserted text starts (code points)
    text: str
    language: str
    kind: str
    model: str
    state: str = "issued"  # then shown; then accepted, partial (may still be accepted) or dismissed

    def event(self, name: str, value: float | None = None) -> Event:
        lines = self.text.count("\n") + 1
        return Event(name, self.language, self.kind, self.model, lines, len(self.text), value)


class Acceptance:
    def __init__(self, store: EventStore, documents: DocumentStore, checks_s: Sequence[float] = SURVIVAL_S) -> None:
        self.store, self.documents, self.checks_s = store, documents, tuple(checks_s)
        self.enabled = True
        self.on_accept: Callable[[Suggestion], None] = lambda s: None  # the prefetch (app.py)
        self._items: OrderedDict[str, Suggestion] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def issued(self, uri: str, row: int, col: int, text: str, language: str, kind: str, model: str) -> str:
        """A suggestion about to be returned; its id goes into the item's command."""
        sid = f"s{next(_ids)}"
        self._items[sid] = Suggestion(sid, uri, row, col, text, language, kind, model)
        while len(self._items) > KEEP:
            self._items.popitem(last=False)
        return sid

    def shown(self, sid: str) -> None:
        item = self._items.get(sid)
        if item is None or item.state != "issued":
            return
        for other in self._items.values():
            if other.uri == item.uri and other.state == "shown":
                self._move(other, "dismissed")
        self._move(item, "shown")

    def partially_accepted(self, sid: str, length: int) -> None:
        if (item := self._items.get(sid)) is not None and item.state in ("issued", "shown"):
            self._move(item, "partial", float(max(0, min(length, len(item.text)))))

    def accepted(self, sid: str) -> Suggestion | None:
        item = self._items.get(sid)
        if item is None or item.state in ("accepted", "dismissed"):
            return None
        if item.state == "issued":  # a client that does not report showing: accepting proves it was
            self._move(item, "shown")
        self._move(item, "accepted")
        for name, delay in zip(("survived30", "survived120"), self.checks_s, strict=False):
            self._spawn(self._survival(item, name, delay))
        self.on_accept(item)
        return item

    def closed(self, uri: str) -> None:
        for item in list(self._items.values()):
            if item.uri == uri and item.state == "shown":
                self._move(item, "dismissed")

    async def _survival(self, item: Suggestion, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._record(item.event(name, self.surviving(item)))

    def surviving(self, item: Suggestion) -> float:
        """The share of the accepted text still there (0 when the document closed)."""
        doc = self.documents.get(item.uri)
        if doc is None or not item.text:
            return 0.0
        lines = item.text.count("\n") + 1
        region = "".join(doc.lines[max(0, item.row - 2) : item.row + lines + 8])[:20_000]
        matcher = difflib.SequenceMatcher(None, item.text[:4000], region, autojunk=False)
        kept = sum(b.size for b in matcher.get_matching_blocks() if b.size >= MIN_RUN or b.size == len(item.text))
        return kept / len(item.text[:4000])

    def _move(self, item: Suggestion, state: str, value: float | None = None) -> None:
        item.state = state
        self._record(item.event(state, value))

    def _record(self, event: Event) -> None:
        if self.enabled:
            self.store.add(event)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.store.close()
