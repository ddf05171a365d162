"""What keeps the server's added time per completion small (issue 21, docs/performance.md): the
context sources' threads kept between completions, no thread for a source with nothing to read,
document snapshots made once per change, and open files' windows scored once per version."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from vllm_companion.context import ContextGatherer, imports, parsing, snippets
from vllm_companion.context.imports import Definitions, imported
from vllm_companion.context.snippets import MAX_DOCS, MAX_LINES, MIN_SCORE, STRIDE, WINDOW, similar, words
from vllm_companion.context.sources import OpenDoc, Query, Snippet, fit
from vllm_companion.context.workers import Workers
from vllm_companion.documents import Change, DocumentStore, Position
from vllm_companion.privacy import Privacy


class _Range:
    def __init__(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        self.start, self.end = Position(*a), Position(*b)


def test_workers_refuse_past_their_size_and_keep_their_threads() -> None:
    """Two jobs hold both threads: a third is refused (not queued); once they end, later jobs run
    on the same threads, none started."""
    pool = Workers(2)
    release, ran = threading.Event(), threading.Semaphore(0)
    started: list[int] = []

    def held() -> None:
        started.append(threading.get_ident())
        release.wait(5)
        ran.release()

    assert pool.submit(held) and pool.submit(held)
    assert not pool.submit(held)  # both busy: refused at once
    release.set()
    for _ in range(2):
        assert ran.acquire(timeout=5)
    before = threading.active_count()
    for _ in range(20):
        assert pool.submit(lambda: (started.append(threading.get_ident()), ran.release()))
        assert ran.acquire(timeout=5)
    assert threading.active_count() == before and len(set(started)) <= 2


def test_a_stuck_job_keeps_its_thread_and_the_others_still_serve() -> None:
    pool = Workers(2)
    stuck, done = threading.Event(), threading.Semaphore(0)
    assert pool.submit(lambda: stuck.wait(5))
    for _ in range(5):
        assert pool.submit(done.release)
        assert done.acquire(timeout=5)
    assert pool.busy == 1
    stuck.set()


async def test_sources_with_nothing_to_read_start_no_thread() -> None:
    """One document open, no edits elsewhere: the open-files and recent-edits sources would find
    nothing, and each cost a thread hand-off (0.3 ms of the event loop) per completion."""
    store = DocumentStore()
    store.open("file:///w/p/a.py", "python", 1, "def helper(alpha, beta):\n    return alpha\n" * 50)
    gatherer = ContextGatherer(store, Privacy())
    submitted: list[object] = []
    real = gatherer._workers.submit
    gatherer._workers.submit = lambda job: submitted.append(job) or real(job)  # type: ignore[method-assign]
    for row in range(0, 100, 16):
        assert await gatherer.gather("file:///w/p/a.py", row, ["open-files", "recent-edits"], 400, 1.0) == ()
    assert submitted == []
    store.open("file:///w/p/b.py", "python", 1, "def helper(alpha, beta):\n    return beta\n")
    found = await gatherer.gather("file:///w/p/a.py", 1, ["open-files", "recent-edits"], 400, 1.0)
    assert [s.path for s in found] == ["b.py"] and len(submitted) == 1  # open-files only: no edits yet
    store.change("file:///w/p/b.py", 2, [Change("x", _Range((0, 0), (0, 0)))], "utf-16")
    await gatherer.gather("file:///w/p/a.py", 1, ["open-files", "recent-edits"], 400, 1.0)
    assert len(submitted) == 3  # both, now that another document was edited


def test_a_snapshot_is_made_once_per_change() -> None:
    store = DocumentStore()
    doc = store.open("file:///w/a.py", "python", 1, "a = 1\nb = 2\n")
    first = doc.snapshot()
    assert first == ("a = 1\n", "b = 2\n") and doc.snapshot() is first
    store.change(doc.uri, 2, [Change("c", _Range((1, 0), (1, 1)))], "utf-16")
    assert doc.snapshot() == ("a = 1\n", "c = 2\n") and doc.snapshot() is not first
    store.change(doc.uri, 3, [Change("z = 0\n")], "utf-16")
    assert doc.snapshot() == ("z = 0\n",)


def reference_similar(query: Query, others: Sequence[OpenDoc], budget: int) -> list[Snippet]:
    """snippets.similar as it was before its windows were kept (every window scored from its text)."""
    wanted = words(query.lines[max(0, query.row - WINDOW) : query.row + 1])
    if not wanted:
        return []
    scored = []
    for doc in others[:MAX_DOCS]:
        lines = doc.lines[:MAX_LINES]
        for start in range(0, max(1, len(lines) - WINDOW // 2), STRIDE):
            found = words(lines[start : start + WINDOW])
            score = len(found & wanted) / len(found | wanted) if found else 0.0
            if score >= MIN_SCORE:
                scored.append((score, start, doc))
    scored.sort(key=lambda s: (-s[0], s[2].path, s[1]))
    picked: list[Snippet] = []
    taken: list[tuple[str, int]] = []
    for _, start, doc in scored:
        if any(path == doc.path and abs(start - s) < WINDOW for path, s in taken):
            continue
        taken.append((doc.path, start))
        picked.append(Snippet(doc.path, "".join(doc.lines[start : start + WINDOW]), "open-files"))
    return fit(picked, budget)


def test_similar_snippets_are_the_same_with_windows_kept() -> None:
    """Kept windows change what is computed when, never what is found: the same snippets as
    scoring every window from its text, for several cursors, budgets and documents (two with the
    same file name, which share the overlap rule)."""
    def text(seed: int, n: int) -> tuple[str, ...]:
        return tuple(f"def fn_{(i * seed) % 97}(alpha_{i % 7}, beta_{(i * 3) % 11}):\n" if i % 5 == 0
                     else f"    gamma_{(i + seed) % 13} = alpha_{i % 7} + beta_{i % 11}\n" for i in range(n))

    docs = [OpenDoc("file:///w/x/b.py", "b.py", text(3, 400)), OpenDoc("file:///w/y/b.py", "b.py", text(5, 250)),
            OpenDoc("file:///w/c.py", "c.py", text(7, 15)), OpenDoc("file:///w/e.py", "e.py", ())]
    current = text(11, 300)
    for row in (0, 7, 120, 299):
        for budget in (30, 400, 100_000):
            q = Query("file:///w/a.py", "a.py", "python", row, current)
            assert similar(q, docs, budget) == reference_similar(q, docs, budget), (row, budget)


def test_windows_are_computed_once_per_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = OpenDoc("file:///w/b.py", "b.py", tuple(f"value_{i} = other_{i}\n" for i in range(200)))
    q = Query("file:///w/a.py", "a.py", "python", 4, doc.lines[:5])
    calls = []
    real = snippets._WORD

    class Counting:
        def findall(self, s: str) -> list[str]:
            calls.append(1)
            return real.findall(s)

    monkeypatch.setattr(snippets, "_WORD", Counting())
    first = similar(q, [doc], 400)
    scans = len(calls)
    assert similar(q, [doc], 400) == first and len(calls) == scans + 1  # the query's own words only
    changed = OpenDoc(doc.uri, doc.path, (*doc.lines[:-1], "value_9 = other_9\n"))
    similar(q, [changed], 400)
    assert len(calls) > scans + 2  # a new version is scanned again
    assert first and re.match(r"value_0 = other_0\n", first[0].text)


def test_import_records_are_parsed_once_per_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Completions at other places of an unchanged file reuse its import records (each asked a
    parse worker before); a new version, or lines that are not a snapshot, are parsed again."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "geometry.py").write_text("def area(width, height):\n    return width * height\n")
    asked: list[str] = []

    def counting(grammar: str, source: bytes, kind: str = "definitions", key: str = "") -> Any:
        asked.append(kind)
        return parsing.parse(grammar, source, kind, key=key)

    monkeypatch.setattr(imports, "parse", counting)
    privacy = Privacy(roots=[tmp_path.as_uri()])
    definitions = Definitions(privacy)
    snapshot = ("from pkg.geometry import area\n", "x = area(1, 2)\n")

    def ask(lines: Sequence[str], row: int) -> list[Snippet]:
        q = Query((tmp_path / "main.py").as_uri(), "main.py", "python", row, lines)
        return imported(q, privacy.roots, definitions, 500)

    first = ask(snapshot, 1)
    assert [s.path for s in first] == ["pkg/geometry.py"] and asked.count("imports") == 1
    assert ask(snapshot, 0) == first and asked.count("imports") == 1
    assert ask((*snapshot, "y = 1\n"), 1) == first and asked.count("imports") == 2
    ask(list(snapshot), 1)
    ask(list(snapshot), 1)
    assert asked.count("imports") == 4
