"""Context beyond the file, gathered for one completion within a deadline.

Each source is a small provider with its share of the context budget (``tokens.SOURCE_SHARES``)
that runs in a worker thread over snapshots (sources.py); all share one deadline
(``completion.contextTimeoutMs``), and a provider still running then is skipped, never waited for.
What they read goes through the privacy filter: only files inside the workspace folders (open
documents too), never secret files; inline secrets are redacted from what they return.

Prefix stability (vLLM's automatic prefix caching): the context sits at the head of the prompt,
so it is computed once per cursor block (``STEP`` lines, as the window's edges) and per version
of the *other* documents, then reused while the user types in that block. ``stability`` in
scripts/bench_prefix.py measures the share of the prompt kept between keystrokes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ..documents import Document, DocumentStore
from ..privacy import Privacy, file_name, redact
from ..tokens import STEP, source_share
from . import parsing
from .imports import Definitions, imported
from .recent import recent
from .snippets import similar
from .sources import OpenDoc, Query, Snippet
from .workers import Workers

log = logging.getLogger(__name__)
SOURCES = ("imports", "open-files", "recent-edits")
MAX_THREADS = 6  # sources running at once, all documents together
MAX_KEPT = 32  # documents whose last context is kept for reuse while typing


class ContextGatherer:
    def __init__(self, documents: DocumentStore, privacy: Privacy) -> None:
        self.documents, self.privacy = documents, privacy
        self.definitions = Definitions(privacy)
        self._workers = Workers(MAX_THREADS)  # the sources' threads, kept between completions
        # per document: key, snippets; the most recently completed-in MAX_KEPT documents only (a
        # key holds a version per open document: thousands of documents, each completed in once,
        # would otherwise keep thousands squared)
        self._last: OrderedDict[str, tuple[Any, tuple[Snippet, ...]]] = OrderedDict()
        parsing.warm()

    async def gather(
        self, uri: str, row: int, sources: Sequence[str], budget: int, timeout_s: float
    ) -> tuple[Snippet, ...]:
        doc = self.documents.get(uri)
        if doc is None or budget <= 0 or not sources:
            return ()
        others = [d for d in self.documents.all() if d.uri != uri]
        rules = (self.privacy.globs, tuple(self.privacy.roots))
        key = (row // STEP, tuple(sources), budget, rules, tuple((d.uri, d.version) for d in others))
        if (last := self._last.get(uri)) is not None and last[0] == key:
            self._last.move_to_end(uri)
            return last[1]  # the filter runs on a miss only: its rules (globs, folders) are in the key
        query = Query(uri, file_name(uri), doc.language_id, row, doc.snapshot())
        jobs = self._jobs(query, others)
        loop = asyncio.get_running_loop()
        tasks = {name: self._run(loop, jobs[name], source_share(budget, name))
                 for name in SOURCES if name in sources and name in jobs}
        _, pending = await asyncio.wait(tasks.values(), timeout=timeout_s) if tasks else (set(), set())
        snippets: list[Snippet] = []
        for name, task in tasks.items():
            if task in pending:
                log.info("context source %s skipped: over its %.0f ms deadline", name, timeout_s * 1000)
            elif task.exception() is not None:
                log.warning("context source %s failed: %s", name, task.exception())
            else:
                snippets.extend(task.result())
        result = tuple(Snippet(s.path, redact(s.text).text, s.source) for s in _dedupe(snippets))
        if not pending:  # a partial answer is not kept: the next request may get the whole one
            self._last[uri] = (key, result)
            self._last.move_to_end(uri)
            while len(self._last) > MAX_KEPT:
                self._last.popitem(last=False)
        return result

    def forget(self, uri: str) -> None:
        self._last.pop(uri, None)

    def _jobs(self, query: Query, others: list[Document]) -> dict[str, Callable[[int], list[Snippet]]]:
        """Each source as a function of its budget, over snapshots of only the documents it reads:
        the same language's (similar snippets) and the edited ones (recent edits); a source with
        none to read is left out (it would find nothing, and a thread hand-off costs more than the
        rest of a completion: issue 21). Which of them may be context (``_allowed``) is decided in
        the source's thread: it resolves paths, which touches the file system, and that never
        happens on the event loop."""
        edits = list(self.documents.edits)
        edited = {u for u, _ in edits}
        snaps = {d.uri: OpenDoc(d.uri, file_name(d.uri), d.snapshot()) for d in others
                 if d.language_id == query.language or d.uri in edited}
        same = [snaps[d.uri] for d in others if d.language_id == query.language]
        jobs: dict[str, Callable[[int], list[Snippet]]] = {
            "imports": lambda b: imported(query, self.privacy.scope(query.uri), self.definitions, b),
            "open-files": lambda b: similar(query, self._allowed(query, same), b),
            "recent-edits": lambda b: recent(query, {d.uri: d for d in self._allowed(query, [*snaps.values()])},
                                             edits, b),
        }
        if not same:
            del jobs["open-files"]
        if edited.isdisjoint(snaps):
            del jobs["recent-edits"]
        return jobs

    def _allowed(self, query: Query, docs: list[OpenDoc]) -> list[OpenDoc]:
        """The open documents that may be context for ``query``: inside the workspace folders
        (``Privacy.scope``: with none declared, the current document's own folder) and not secret.
        An open document is no exception: a file from elsewhere (another project, ``/etc``, a
        scratch buffer with no path) never reaches a prompt for this one (issue 19)."""
        roots = self.privacy.scope(query.uri)
        return [d for d in docs if self.privacy.allowed(d.uri, roots)]

    def _run(self, loop: asyncio.AbstractEventLoop, job: Callable[[int], list[Snippet]], budget: int) -> Any:
        """``job(budget)`` on a daemon thread of the pool (workers.py): one stuck on a hung file
        system never holds the server's exit. At most ``MAX_THREADS`` at once; past that the
        source is skipped (it answers an empty list)."""
        future: asyncio.Future[list[Snippet]] = loop.create_future()

        def work() -> None:
            try:
                result, error = job(budget), None
            except Exception as exc:  # reported by gather, like a late source
                result, error = [], exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for it
                loop.call_soon_threadsafe(_settle, future, result, error)

        if not self._workers.submit(work):
            future.set_result([])
        return future


def _settle(future: asyncio.Future[list[Snippet]], result: list[Snippet], error: Exception | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _dedupe(snippets: list[Snippet]) -> list[Snippet]:
    seen: set[str] = set()
    out = []
    for s in snippets:
        if s.text not in seen:
            seen.add(s.text)
            out.append(s)
    return out
