"""The user's recent edits, as a next-edit model and edit propagation read them (issue 22).

Why a history of its own: the document store keeps only where edits fell (documents.py
``edits``); a next-edit prompt needs what changed ("recent changes" in Sweep's format, "User
Edits" in Zeta's), and propagation needs the last rename. Rules:
- keystrokes coalesce into one edit while they stay within ``WINDOW`` lines of where the edit
  began and come less than ``PAUSE_S`` apart (Zed's zeta groups a buffer's changes the same way,
  by pause and locality); a far change or a pause closes the edit;
- ``changing`` runs *before* a didChange is applied: an edit opens a window of the lines around
  it (a copy of at most ``2 * WINDOW + 1`` line references, not of the document) and closes by
  comparing that window with the same lines later. A whole-text change (a client that syncs full
  text) opens a window of the whole document, up to ``FULL_MAX_LINES`` lines, else it is not kept;
- the last ``MAX_EDITS`` edits of the workspace are kept (``recent`` takes the newest within the
  request's count and token budget); each edit holds at most ``MAX_LINES`` lines of at most
  ``MAX_LINE_CHARS`` characters (diffing.py, the text arithmetic), at most ``MAX_OPEN`` windows
  are open at once (the oldest is closed first): memory is bounded per document and in total;
- secret files (``Privacy.is_secret``) are never recorded, and are checked again when read (the
  user's globs may have grown); inline secrets are redacted when an edit is closed
  (``privacy.redact``), so no prompt gets them from here;
- an edit that came from an accepted suggestion is marked (``accepted``): formats show it, and
  propagation continues from it to the next occurrence.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..documents import Change, Document, DocumentStore
from ..privacy import Privacy, file_name, path_of, redact
from ..tokens import estimate_tokens
from .diffing import span, trimmed
from .types import RecordedEdit

PAUSE_S = 1.5  # a pause this long closes an edit
WINDOW = 6  # lines either side of an edit's first change that the same edit may still touch
MAX_EDITS = 64  # edits kept, all documents together
MAX_OPEN = 8  # documents with an edit open at once
FULL_MAX_LINES = 20_000  # a whole-text change on a longer document is not recorded
MAX_SECRET_CACHE = 1024


@dataclass
class _Open:
    """An edit still being typed: the window's lines when it began, rows in current coordinates."""

    uri: str
    lo: int
    hi: int | None  # None: the whole document (a whole-text change)
    base: list[str]
    last: float
    accepted: bool = False


class EditHistory:
    def __init__(self, documents: DocumentStore, privacy: Privacy, clock: Callable[[], float] = time.monotonic) -> None:
        self.documents, self.privacy, self.clock = documents, privacy, clock
        self._edits: deque[RecordedEdit] = deque(maxlen=MAX_EDITS)
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._accept_next: set[str] = set()
        self._secret: dict[str, bool] = {}  # is_secret per URI for the keystroke path (realpath is a syscall)
        self._globs: tuple[str, ...] = privacy.globs  # the rules ``_secret`` was filled under

    def changing(self, uri: str, changes: Iterable[Change]) -> None:
        """A didChange about to be applied to ``uri`` (lsp/protocol.py): all its changes at once.
        The document is still as it was before the first of them, so they are taken together as
        one span of its lines (diffing.py ``span``), never one at a time against lines they do not name
        (2,000 whole-text changes in one notification used to take 21 s, one window per change)."""
        doc = self.documents.get(uri)
        if doc is None or self._is_secret(uri):
            return
        if batch := list(changes):
            self._change(doc, span(batch, len(doc.lines)), self.clock())

    def _is_secret(self, uri: str) -> bool:
        """``Privacy.is_secret``, remembered per URI while the rules stay the same (``recent``
        asks again, uncached, before anything is read)."""
        if self._globs is not self.privacy.globs or len(self._secret) > MAX_SECRET_CACHE:
            self._secret.clear()
            self._globs = self.privacy.globs
        if uri not in self._secret:
            self._secret[uri] = self.privacy.is_secret(uri)
        return self._secret[uri]

    def _change(self, doc: Document, span: tuple[int, int, int] | None, now: float) -> None:
        """One notification's span: ``(r0, r1, lines added)`` in the document's current rows, or
        None for the whole text."""
        edit = self._open.get(doc.uri)
        if span is None:
            if edit is not None and edit.hi is None and now - edit.last <= PAUSE_S:
                edit.last = now  # the same whole-text edit goes on (a client that syncs full text)
                return
            self._close(doc.uri)
            if len(doc.lines) <= FULL_MAX_LINES:
                self._begin(_Open(doc.uri, 0, None, list(doc.lines), now))
            return
        r0, r1, added = span
        if edit is not None and (now - edit.last > PAUSE_S or not _inside(edit, r0, r1)):
            self._close(doc.uri)
            edit = None
        if edit is None:
            lo, hi = max(0, r0 - WINDOW), min(len(doc.lines), r1 + WINDOW + 1)
            edit = self._begin(_Open(doc.uri, lo, max(hi, r1 + 1), doc.lines[lo:hi], now))
        edit.last = now
        if edit.hi is not None:
            edit.hi = max(edit.lo, edit.hi + added)

    def _begin(self, edit: _Open) -> _Open:
        if edit.uri in self._accept_next:
            self._accept_next.discard(edit.uri)
            edit.accepted = True
        self._open[edit.uri] = edit
        while len(self._open) > MAX_OPEN:
            self._close(next(iter(self._open)))
        return edit

    def _close(self, uri: str) -> None:
        edit = self._open.pop(uri, None)
        if edit is not None and (recorded := self._diff(edit)) is not None:
            self._edits.append(recorded)

    def _now(self, edit: _Open) -> list[str] | None:
        doc = self.documents.get(edit.uri)
        if doc is None:
            return None
        return doc.lines[edit.lo :] if edit.hi is None else doc.lines[edit.lo : edit.hi]

    def _diff(self, edit: _Open, lines: list[str] | None = None) -> RecordedEdit | None:
        """The open edit as a RecordedEdit: its window then and now (or ``lines``), common lines
        trimmed."""
        now = lines if lines is not None else self._now(edit)
        found = trimmed(edit.base, now) if now is not None else None
        if found is None:
            return None
        head, before, after = found
        path = self.display_path(edit.uri)
        return RecordedEdit(edit.uri, path, edit.lo + head, redact(before).text, redact(after).text, edit.accepted)

    def accepted(self, uri: str, row: int) -> None:
        """A suggestion for ``uri`` at ``row`` was accepted: the edit that applies it is marked,
        whether its didChange came before the accept command or comes after it."""
        edit = self._open.get(uri)
        if self.documents.get(uri) is None:
            return  # closed meanwhile: no edit of it is to come
        if edit is not None and (edit.hi is None or edit.lo <= row < edit.hi):
            self._split(edit, row)
            edit.accepted = True
            self._close(uri)
        else:
            self._close(uri)
            self._accept_next.add(uri)

    def _split(self, edit: _Open, row: int) -> None:
        """The accepted suggestion's didChange came first and joined the user's own open edit (the
        rename it continues, typed a moment before): record the user's part on its own, so the
        accepted edit is the last edit and propagation continues from it. Only when the accepted
        row is the one that differs from the user's part and no line was added or removed."""
        now, i = self._now(edit), row - edit.lo
        if now is None or len(now) != len(edit.base) or not 0 <= i < len(now) or now[i] == edit.base[i]:
            return
        mine = [*now[:i], edit.base[i], *now[i + 1 :]]
        if mine != edit.base and (recorded := self._diff(edit, mine)) is not None:
            self._edits.append(recorded)
            edit.base = mine

    def recent(self, count: int, tokens: int, roots: Sequence[Path] | None = None) -> tuple[RecordedEdit, ...]:
        """The newest ``count`` edits within ``tokens``, oldest first, open ones included; never a
        secret file's, and with ``roots`` (``Privacy.scope`` of the document a prompt is for) only
        files inside them: an edit in another project's file or a scratch buffer is never sent with
        this one's (docs/security.md, "Files come only from the workspace"). Open edits are diffed
        only as far as they are needed."""
        picked: list[RecordedEdit] = []
        budget = tokens  # tokens.py's estimate, as every other prompt part
        for edit in self._newest_first():
            if len(picked) >= count:
                break
            if self.privacy.is_secret(edit.uri) or (roots is not None and not self.privacy.allowed(edit.uri, roots)):
                continue
            budget -= estimate_tokens(edit.before) + estimate_tokens(edit.after) + estimate_tokens(edit.path)
            if budget < 0:
                break
            picked.append(edit)
        return tuple(reversed(picked))

    def _newest_first(self) -> Iterator[RecordedEdit]:
        for edit in reversed(list(self._open.values())):
            if (recorded := self._diff(edit)) is not None:
                yield recorded
        yield from reversed(list(self._edits))

    def last(self) -> RecordedEdit | None:
        """The newest edit, open or closed (propagation's input)."""
        edits = self.recent(1, 1 << 20)
        return edits[-1] if edits else None

    def closed(self, uri: str) -> None:
        self._close(uri)
        self._accept_next.discard(uri)

    def display_path(self, uri: str) -> str:
        """Workspace-relative when the file is in a workspace folder, else its name."""
        path = path_of(uri)
        for root in self.privacy.roots:
            prefix = str(root).rstrip("/") + "/"
            if path.startswith(prefix):
                return path[len(prefix) :]
        return file_name(uri)

    def size(self) -> tuple[int, int]:
        """(edits kept, windows open): for tests of the bounds."""
        return len(self._edits), len(self._open)


def _inside(edit: _Open, r0: int, r1: int) -> bool:
    return edit.hi is None or (edit.lo <= r0 and r1 < edit.hi)
