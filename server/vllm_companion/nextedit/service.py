"""NextEditService: one next-edit request, from the cursor to the offered edits (issue 22).

A straight line, under the request's cap (``nextEdit.timeoutMs``, from its arrival):
1. nothing for a disabled feature, an unknown document, a version other than the document's (the
   editor asked about text it no longer has, or spoofed a version), or a secret file;
2. the document's slot: a newer request for the same document supersedes this one (it answers
   ``[]`` at once and its model call is cancelled), as completion/slot.py does for completions;
3. edit propagation (propagation.py): instant, no model; it wins when it finds something;
4. the predictor (nextedit/model.py), when one is configured: the editable region (region.py,
   redacted) and the recent edits (history.py, redacted) in, a predicted region out, then
   edits.py turns it into a replacement; the call is cancelled when the cap passes, the request
   is superseded or the editor cancels it (``$/cancelRequest`` cancels this coroutine);
5. the document's version is checked again: an edit for text that has moved on is never offered.
Each offer gets an id from ``Acceptance`` (kind ``next_edit``): shown, accepted and dismissed go to
the local telemetry store; an accept marks the edit that applied it in the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass

from ..config import Config
from ..documents import Change, Document, DocumentStore
from ..privacy import Privacy
from ..telemetry.tracker import NEXT_EDIT, Acceptance
from . import edits
from .formats import BY_NAME
from .history import EditHistory
from .propagation import Lines, Target, propagate, rename_of
from .region import region
from .types import NextEditInput, Predictor, Suggestion

log = logging.getLogger(__name__)
MAX_OTHERS = 16  # other open documents propagation looks into
MAX_CANDIDATES = 64  # open documents checked for them (a path resolved each)


@dataclass(frozen=True)
class Offer:
    """One edit to offer: where (the document and the version it was computed on) and its id."""

    id: str
    uri: str
    version: int
    suggestion: Suggestion  # its text has the document's line endings


class _Rows:
    """A document's lines without their endings, read one at a time (propagation.Text)."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def __len__(self) -> int:
        return len(self.doc.lines)

    def __getitem__(self, row: int) -> str:
        return self.doc.line(row)


class NextEditService:
    def __init__(self, config: Config, documents: DocumentStore, privacy: Privacy, history: EditHistory,
                 acceptance: Acceptance, predictor: Predictor | None) -> None:
        self.config, self.documents, self.privacy = config, documents, privacy
        self.history, self.acceptance, self.predictor = history, acceptance, predictor
        self._slots: dict[str, asyncio.Event] = {}  # uri -> the running request's "superseded"

    def reconfigure(self, config: Config) -> None:
        self.config = config

    async def suggest(self, uri: str, version: int, row: int, col: int, arrived: float | None = None) -> list[Offer]:
        """The edits to offer at (row, col) of ``uri`` at ``version`` (code points); [] for none.
        The cap runs from ``arrived`` (time.monotonic; lsp: ``transport.arrived``), as completion's."""
        settings = self.config.nextEdit
        doc = self.documents.get(uri)
        if not settings.enabled or doc is None or doc.version != version or self.privacy.is_secret(uri):
            return []
        loop = asyncio.get_running_loop()
        waited = time.monotonic() - arrived if arrived is not None else 0.0
        deadline = loop.time() + settings.timeout_ms / 1000 - waited
        with self._slot(uri) as superseded:
            targets = self._safely_propagated(doc, row, col) if settings.propagation else []
            if not targets and self.predictor is not None and settings.model != "off":  # off: propagation only
                work = self._predicted(self.predictor, doc, row, col)
                targets = await _within(work, superseded, deadline - loop.time()) or []
            if superseded.is_set() or doc.version != version:
                return []
            return [self._offer(t) for t in targets if self._current(t, uri, version)]

    @contextlib.contextmanager
    def _slot(self, uri: str) -> Iterator[asyncio.Event]:
        """This request holds ``uri``'s slot; an older one still running is told it is superseded."""
        if (older := self._slots.get(uri)) is not None:
            older.set()
        mine = self._slots[uri] = asyncio.Event()
        try:
            yield mine
        finally:
            if self._slots.get(uri) is mine:
                del self._slots[uri]

    def _safely_propagated(self, doc: Document, row: int, col: int) -> list[Target]:
        """A bug in propagation costs this request its edit, never an error answer (the protocol
        promises ``{edits: []}`` when there is nothing)."""
        try:
            return self._propagated(doc, row, col)
        except Exception:
            log.exception("next-edit propagation failed")
            return []

    def _propagated(self, doc: Document, row: int, col: int) -> list[Target]:
        """Propagation into this document, then into at most ``MAX_OTHERS`` other open ones that
        may be context for it (``Privacy.allowed``: inside the workspace, not secret), chosen among
        the first ``MAX_CANDIDATES`` (each check resolves a path: 100,000 open documents used to
        cost 6.6 s a request)."""
        rename = rename_of(self.history.last())
        if rename is None:
            return []
        roots = self.privacy.scope(doc.uri)
        candidates = itertools.islice((d for d in self.documents.all() if d.uri != doc.uri), MAX_CANDIDATES)
        others = [d for d in candidates if self.privacy.allowed(d.uri, roots)]
        lines = [Lines(d.uri, _Rows(d)) for d in others[:MAX_OTHERS]]
        return propagate(rename, Lines(doc.uri, _Rows(doc)), row, col, lines)

    async def _predicted(self, predictor: Predictor, doc: Document, row: int, col: int) -> list[Target]:
        settings = self.config.nextEdit
        made = region(doc, self.history.display_path(doc.uri), row, col)
        if made is None:
            return []
        sent, plain, redaction = made
        history = self.history.recent(settings.history_edits, settings.history_tokens, self.privacy.scope(doc.uri))
        try:
            answer = await predictor.predict(NextEditInput(sent, history))
        except Exception as exc:  # the backend's failures are the predictor's to report; here: no edit
            log.info("next-edit prediction failed: %s", exc)
            return []
        if answer is None:
            return []
        source = settings.family if settings.family in BY_NAME else "model"  # a label in the local store
        secrets = tuple(redaction.found.values())
        found = edits.suggestions(plain, redaction.restore(answer), history[-1] if history else None, source,
                                  secrets=secrets)
        return [Target(doc.uri, s) for s in found]

    def _current(self, target: Target, uri: str, version: int) -> bool:
        """The target's document is open, and the request's own document is still at ``version``."""
        doc = self.documents.get(uri)
        return doc is not None and doc.version == version and self.documents.get(target.uri) is not None

    def _offer(self, target: Target) -> Offer:
        doc = self.documents.get(target.uri)
        assert doc is not None  # _current checked it
        s = target.suggestion
        text = edits.with_eol(s.text, edits.eol_of(doc.lines[0] if doc.lines else ""))
        sid = self.acceptance.issued(target.uri, s.start_row, s.start_col, text, doc.language_id, NEXT_EDIT, s.source)
        suggestion = Suggestion(s.start_row, s.start_col, s.end_row, s.end_col, text, s.source)
        return Offer(sid, target.uri, doc.version, suggestion)

    def changing(self, uri: str, changes: Iterable[Change]) -> None:
        """A didChange about to be applied (lsp/protocol.py): the history records it."""
        self.history.changing(uri, changes)

    def shown(self, sid: str) -> None:
        if self._mine(sid):
            self.acceptance.shown(sid)

    def accepted(self, sid: str) -> None:
        item = self.acceptance.accepted(sid) if self._mine(sid) else None
        if item is not None:
            self.history.accepted(item.uri, item.row)

    def dismissed(self, sid: str) -> None:
        if self._mine(sid):
            self.acceptance.dismissed(sid)

    def _mine(self, sid: str) -> bool:
        """``sid`` names a next edit: the id of an inline completion sent to a next-edit command
        would record that completion (and prefetch after it) as if it had been offered here."""
        item = self.acceptance.get(sid)
        return item is not None and item.kind == NEXT_EDIT

    def closed(self, uri: str) -> None:
        self.history.closed(uri)
        if (running := self._slots.get(uri)) is not None:
            running.set()


async def _within(work: Awaitable[list[Target]], superseded: asyncio.Event, limit_s: float) -> list[Target] | None:
    """``work``'s result, or None when superseded or past ``limit_s`` (the work is then cancelled);
    a cancelled request cancels it too."""
    job = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(superseded.wait())
    try:
        done, _ = await asyncio.wait({job, stop}, timeout=max(0.0, limit_s), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not job.done():
            job.cancel()
    if job not in done:
        return None
    if (failed := job.exception()) is not None:  # a bug below the predictor: no edit, not an error answer
        log.error("next-edit prediction failed", exc_info=failed)
        return None
    return job.result()
