"""What became of each suggestion: shown, accepted, partly accepted, dismissed, and how much of an
accepted one is still in the document 30 s and 2 min later.

Protocol (mirrors the Copilot language server, so clients that speak it work unchanged):
- every inline item carries ``command`` ``vllmCompanion.didAcceptCompletion`` with its id: the
  editor runs it (``workspace/executeCommand``) when the user accepts the item;
- ``textDocument/didShowCompletion`` ``{item}`` when the editor shows it;
- ``textDocument/didPartiallyAcceptCompletion`` ``{item, acceptedLength}`` for a word or line.
VS Code's stable API reports no partial accept (issue 23, point 8), but the edit it makes does:
``typed`` is every single-line change, before it is applied, and a change that puts at a
suggestion's place a proper prefix of it, ending on a word or line boundary, is a partial accept
(``partial_length``). A full accept inserts the whole text, not a proper prefix, and is counted by
its command only; typing the suggestion's first characters by hand is not counted (below).
A shown suggestion is *dismissed* when another one is shown in the same document, or the
document closes, without it being accepted. Survival is the share of the accepted text's
characters still found, in order, around where it went (survival.py: bounded, and computed in the
store's writer thread, never on the event loop); at most ``TIMERS`` checks wait at once.

Next-edit suggestions (nextedit/service.py) are tracked here too, with the kind ``next_edit``
(the ``kind`` column; ``vllm-companion stats`` shows them as their own row): shown through
``textDocument/didShowInlineEdit``, accepted or dismissed through their commands; no prefetch
and no partial accepts for them, and showing one dismisses only another next edit.

Nothing here waits on the store: events go to its queue; when the store turns itself off
(``EventStore.failure``) the user is told once, with the next event or suggestion.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from ..documents import DocumentStore
from . import survival
from .events import MAX_LABEL, Event
from .store import EventStore

log = logging.getLogger(__name__)
KEEP = 512  # suggestions remembered (ids the editor may still report on)
TIMERS = 2 * KEEP  # survival checks waiting at once; an accept beyond them gets none (issue 19, point 7)
SURVIVAL_S = (30.0, 120.0)
NEXT_EDIT = "next_edit"  # the kind of a next-edit suggestion (nextedit/service.py): no prefetch, no partials
_ids = itertools.count(1)
_WORD = re.compile(r"\w")


def partial_length(suggestion: str, there: str, inserted: str) -> int | None:
    """How much of ``suggestion`` a change took, when it is a partial accept: ``there`` is what
    was between the suggestion's start and the change (what the user had typed of it), and
    ``inserted`` the change's text. A partial accept adds at least one whole word or line (VS
    Code's "Accept Word" / "Accept Line"): two characters or more, one of them a word character,
    ending where a word of the suggestion ends. A single keystroke inserts one character, so typing
    the suggestion's first letters by hand, or its one-letter word, is never counted; a full accept
    inserts all of it (not a proper prefix) and is counted by the item's command alone."""
    if len(inserted) < 2 or len(there) + len(inserted) >= len(suggestion) or not _WORD.search(inserted):
        return None
    taken = there + inserted
    if not suggestion.startswith(taken):
        return None
    mid_word = _WORD.match(taken[-1]) and _WORD.match(suggestion[len(taken)])
    return None if mid_word else len(taken)


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
        labels = (self.language[:MAX_LABEL], self.kind[:MAX_LABEL], self.model[:MAX_LABEL])
        return Event(name, *labels, lines, len(self.text), value)


class Acceptance:
    def __init__(
        self, store: EventStore, documents: DocumentStore, checks_s: Sequence[float], enabled: bool, *,
        on_accept: Callable[[Suggestion], None], notice: Callable[[str], None],
    ) -> None:
        self.store, self.documents, self.checks_s, self.enabled = store, documents, tuple(checks_s), enabled
        self.on_accept = on_accept  # the prefetch (app.py)
        self.notice = notice  # tells the user (app.py: the status)
        self._told = False
        self._items: OrderedDict[str, Suggestion] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def issued(self, uri: str, row: int, col: int, text: str, language: str, kind: str, model: str) -> str:
        """A suggestion about to be returned; its id goes into the item's command."""
        self._tell_once()
        sid = f"s{next(_ids)}"
        self._items[sid] = Suggestion(sid, uri, row, col, text, language, kind, model)
        while len(self._items) > KEEP:
            self._items.popitem(last=False)
        return sid

    def shown(self, sid: str) -> None:
        item = self._items.get(sid)
        if item is None or item.state != "issued":
            return
        same = item.kind == NEXT_EDIT  # a next edit and an inline completion may show together
        for other in self._items.values():
            if other.uri == item.uri and other.state == "shown" and (other.kind == NEXT_EDIT) == same:
                self._move(other, "dismissed")
        self._move(item, "shown")

    def partially_accepted(self, sid: str, length: int) -> None:
        if (item := self._items.get(sid)) is not None and item.state in ("issued", "shown"):
            self._move(item, "partial", float(max(0, min(length, len(item.text)))))

    def typed(self, uri: str, row: int, col: int, inserted: str) -> None:
        """A change inserting ``inserted`` at (``row``, ``col``), before it is applied: a partial
        accept of the document's latest suggestion still on offer (``partial_length``)."""
        item = next((i for i in reversed(self._items.values()) if i.uri == uri and i.kind != NEXT_EDIT), None)
        if item is None or item.state not in ("issued", "shown") or row != item.row or col < item.col:
            return
        doc = self.documents.get(uri)
        there = doc.line(row)[item.col:col] if doc is not None else None
        if there is not None and (length := partial_length(item.text, there, inserted)) is not None:
            self.partially_accepted(item.id, length)

    def accepted(self, sid: str) -> Suggestion | None:
        item = self._items.get(sid)
        if item is None or item.state in ("accepted", "dismissed"):
            return None
        if item.state == "issued":  # a client that does not report showing: accepting proves it was
            self._move(item, "shown")
        self._move(item, "accepted")
        checks = list(zip(("survived30", "survived120"), self.checks_s, strict=False))
        if len(self._tasks) + len(checks) <= TIMERS:  # each holds the text for up to 2 min
            for name, delay in checks:
                self._spawn(self._survival(item, name, delay))
        if item.kind != NEXT_EDIT:
            self.on_accept(item)
        return item

    def dismissed(self, sid: str) -> None:
        """The editor dismissed a suggestion it showed (a next edit's dismiss command)."""
        if (item := self._items.get(sid)) is not None and item.state in ("issued", "shown"):
            self._move(item, "dismissed")

    def get(self, sid: str) -> Suggestion | None:
        return self._items.get(sid)

    def closed(self, uri: str) -> None:
        for item in list(self._items.values()):
            if item.uri == uri and item.state == "shown":
                self._move(item, "dismissed")

    async def _survival(self, item: Suggestion, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        doc = self.documents.get(item.uri)
        where = survival.regions(doc.lines if doc is not None else None, item.row, item.text)
        self._record(lambda: item.event(name, survival.share(item.text, where)))

    def _move(self, item: Suggestion, state: str, value: float | None = None) -> None:
        item.state = state
        self._record(item.event(state, value))

    def _record(self, event: Event | Callable[[], Event]) -> None:
        if self.enabled:
            self.store.add(event)
            self._tell_once()

    def _tell_once(self) -> None:
        if self.store.failure is not None and self.enabled and not self._told:
            self._told = True
            self.notice(self.store.failure)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.store.close()
