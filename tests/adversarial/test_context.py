"""Completion context as an attack surface: what other files may add to a prompt, and what a file
may cost the server.

Issue 19: open documents outside the workspace folders went into completion context (point 3);
imported definitions stayed cached after the user excluded their file (point 4); a pathological
TypeScript file froze every request of the server for 11.7 s inside tree-sitter (point 5). Over
real stdio against the fake engine; what the engine received is read back from its request log.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, options, session, split_cursor

ALL_SOURCES = ["imports", "open-files", "recent-edits"]


def open_at(client: Any, uri_or_path: Path | str, marked: str, language: str = "python") -> tuple[str, types.Position]:
    text, pos = split_cursor(marked)
    uri = uri_or_path.as_uri() if isinstance(uri_or_path, Path) else uri_or_path
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))
    return uri, pos


def edit(client: Any, uri: str, text: str) -> None:
    """A keystroke's worth of change at the top of ``uri``: a recent edit elsewhere."""
    start = types.Position(0, 0)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=start, end=start), text=text)]))


def lookalike(marker: str) -> str:
    """A file that shares every identifier with ``MAIN``: the similar-snippets source picks it."""
    return f"def order_total(order_items, discount_rate):\n    return '{marker}'\n"


MAIN = "def checkout(order_items, discount_rate):\n    total = order_total(order_items, discount_rate)█\n"


def prompt_of(backend: FakeBackend) -> str:
    return str(backend.generation_requests()[-1].body["prompt"])


# -- point 3: the workspace folders bound every source ---------------------------------------------
async def test_open_document_outside_the_workspace_is_never_completion_context(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """Another project's file, a workspace link to a file outside, a scratch buffer with no path
    and another machine's file (whose path looks like the workspace's), all open and recently
    edited: none reaches the prompt of a completion in the workspace; an open workspace file does."""
    ws, outside = tmp_path / "ws", tmp_path / "other-project"
    ws.mkdir()
    outside.mkdir()
    (outside / "target.py").write_text(lookalike("LINKED-OUTSIDE"))
    (ws / "linked.py").symlink_to(outside / "target.py")
    backend.default = Reply(chunks=["x"])
    async with session(options(backend.url, contextSources=ALL_SOURCES), workspace=ws.as_uri()) as client:
        for where, marker in ((outside / "diary.py", "OUTSIDE-DIARY"), (ws / "linked.py", "LINKED-OUTSIDE"),
                              ("untitled:Untitled-1", "SCRATCH-BUFFER"), (ws / "helper.py", "INSIDE-HELPER"),
                              (f"vscode-remote://ssh-remote+box{ws}/remote.py", "OTHER-MACHINE")):
            uri, _ = open_at(client, where, lookalike(marker) + "█")
            edit(client, uri, f"# {marker}-EDIT\n")
        uri, pos = open_at(client, ws / "main.py", MAIN)
        assert await inline(client, uri, pos) == "x"
    prompt = prompt_of(backend)
    for marker in ("OUTSIDE-DIARY", "LINKED-OUTSIDE", "SCRATCH-BUFFER", "OTHER-MACHINE"):
        assert marker not in prompt, marker
    assert "INSIDE-HELPER" in prompt and "INSIDE-HELPER-EDIT" in prompt


async def test_without_a_workspace_folder_context_stays_in_the_documents_own_folder(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """An editor that declares no folder (Neovim without a root): the current document's folder
    and below stand in for the workspace; a file of another folder is not context, and a
    document right in the home folder gets nothing from other files (its subtree is everything)."""
    home, proj, other = tmp_path / "home", tmp_path / "home" / "proj", tmp_path / "home" / "other"
    (proj / "pkg").mkdir(parents=True)
    other.mkdir()
    backend.default = Reply(chunks=["x"])
    async with session(options(backend.url, contextSources=ALL_SOURCES), env={"HOME": str(home)}) as client:
        open_at(client, proj / "pkg" / "helper.py", lookalike("SAME-FOLDER-TREE") + "█")
        open_at(client, other / "notes.py", lookalike("OTHER-FOLDER") + "█")
        uri, pos = open_at(client, proj / "main.py", MAIN)
        assert await inline(client, uri, pos) == "x"
        in_project = prompt_of(backend)
        uri, pos = open_at(client, home / "scratch.py", MAIN)
        assert await inline(client, uri, pos) == "x"
        in_home = prompt_of(backend)
    assert "SAME-FOLDER-TREE" in in_project and "OTHER-FOLDER" not in in_project
    assert "SAME-FOLDER-TREE" not in in_home and "OTHER-FOLDER" not in in_home


# -- point 4: a cached definition is no exemption from the filter ---------------------------------
async def test_imported_definitions_of_a_file_excluded_after_caching_are_not_sent(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """``pricing.py``'s definitions are parsed and cached for one completion; the user then
    excludes the file (``chat.excludeGlobs``): the next completion importing it carries none."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "pricing.py").write_text("def apply_discount(price: float, percent: int) -> float:\n"
                                                   "    return price * (100 - percent) / 100\n")
    marked = "from shop.pricing import apply_discount\n\ndef checkout(cart):\n    total = █\n"
    backend.default = Reply(chunks=["x"])
    async with session(options(backend.url, contextSources=["imports"]), workspace=tmp_path.as_uri()) as client:
        uri, pos = open_at(client, tmp_path / "checkout.py", marked)
        assert await inline(client, uri, pos) == "x"
        assert "def apply_discount(price: float" in prompt_of(backend)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"vllmCompanion": {"chat": {"excludeGlobs": ["pricing.py"]}}}))
        uri, pos = open_at(client, tmp_path / "refund.py", marked)
        assert await inline(client, uri, pos) == "x"
    assert "from shop.pricing import apply_discount" in prompt_of(backend)
    assert "def apply_discount(price: float" not in prompt_of(backend)


# -- point 5: a pathological file costs its parse budget, not the server ----------------------------
PATHOLOGICAL = "a<b>(c)<" * 3000  # 24 KB: tree-sitter-typescript's GLR parse took 11.7 s, GIL held
PING_CAP_S = 0.1
# Another thread held by a parse, measured in-process: the freeze was seconds; a loaded 2-core
# machine alone can delay a 1 ms ticker by tens of ms, so the bound leaves room for the scheduler.
HELD_CAP_S = 0.25


async def pings(client: Any, uri: str, stop: asyncio.Event) -> list[float]:
    """Round trips of a trivial request (code actions of a small file), back to back until stopped."""
    times: list[float] = []
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(0, 0), end=types.Position(0, 1)),
        context=types.CodeActionContext(diagnostics=[]))
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.wait_for(client.text_document_code_action_async(params), 10)
        times.append(time.perf_counter() - t0)
        await asyncio.sleep(0.01)
    return times


async def test_pathological_typescript_cannot_freeze_the_server(backend: FakeBackend, tmp_path: Path) -> None:
    """The file open as the current document and imported by another, imports on: each completion
    is answered within its cap, and a trivial request is answered within 100 ms throughout."""
    (tmp_path / "evil.ts").write_text(PATHOLOGICAL)
    backend.default = Reply(chunks=["x"])
    cap_ms = 2000
    settings = options(backend.url, contextSources=ALL_SOURCES, timeoutMs=cap_ms)
    async with session(settings, workspace=tmp_path.as_uri()) as client:
        small, _ = open_at(client, tmp_path / "small.py", "x = 1\n█")
        def documents() -> list[tuple[str, Any]]:
            evil = open_at(client, tmp_path / "evil.ts", PATHOLOGICAL + "\n█", "typescript")
            importer = 'import { a } from "./evil"\nconst x = █\n'
            return [evil, open_at(client, tmp_path / "main.ts", importer, "typescript"), evil]

        answered, times = await completing_while_pinging(client, small, documents, settle_s=0.5)
    assert max(answered) < cap_ms / 1000 + 0.2, answered
    assert len(times) > 10 and max(times) < PING_CAP_S, sorted(times)[-5:]


def test_pathological_parse_is_cut_at_its_budget_and_lets_other_threads_run() -> None:
    """The parse itself: cancelled at its budget (the file then backs off), one at a time per file,
    and another thread (the event loop's) is never held more than a few switch intervals."""
    from vllm_companion.context import parsing

    def both() -> tuple[Any, Any]:
        first = parsing.parse("typescript", PATHOLOGICAL.encode(), key="/w/evil.ts", budget_s=0.2)
        return first, parsing.parse("typescript", b"const a = 1\n", key="/w/evil.ts")  # backing off

    (first, again), took, held = ticking(both)
    assert first is None and again is None
    assert took < 1.0, took  # the budget and a little: the whole parse takes seconds
    assert held < HELD_CAP_S, held
    assert parsing.parse("typescript", b"const a = 1\n", key="/w/fine.ts") is not None


# One parse step that never yields: error recovery ran for seconds between two progress callbacks,
# the GIL held (16 KB of TypeScript ``a<b,``: 1.2 s and 430 MB in one step; 64 KB: 7.1 s, 4.3 GB), and
# 32 KB of C ``(a)-(b)``: 8.5 s, 3.5 GB, and SIGSEGV in ts_stack_pop_all when memory ran short.
NEVER_YIELDS_TS = "a<b," * 4000
NEVER_YIELDS_C = "(a)-(b)" * 2000


def ticking(work: Any) -> tuple[Any, float, float]:
    """``work()``'s result, how long it took, and the longest another thread was held meanwhile."""
    import threading

    gaps: list[float] = [0.0]
    done = threading.Event()

    def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        t0 = time.perf_counter()
        result = work()
        took = time.perf_counter() - t0
    finally:
        done.set()
        thread.join()
    return result, took, max(gaps)


def test_parse_step_that_never_yields_costs_its_budget_not_the_server() -> None:
    """TypeScript and C whose error recovery runs seconds in one step: each parse ends by its budget
    and grace, another thread never waits on it, and the next parse of an ordinary file works."""
    from vllm_companion.context import parsing

    for grammar, source in (("typescript", NEVER_YIELDS_TS), ("c", NEVER_YIELDS_C * 2)):
        found, took, held = ticking(partial(parsing.parse, grammar, source.encode(), key=f"/w/stuck.{grammar}"))
        assert found is None and took < parsing.BUDGET_S + parsing.GRACE_S + 0.5, (grammar, took)
        assert held < HELD_CAP_S, (grammar, held)
    assert parsing.parse("c", b"#include \"a.h\"\n", "imports") == [["include", "a.h", ["*"]]]


async def test_file_whose_parse_never_yields_cannot_freeze_the_server(backend: FakeBackend, tmp_path: Path) -> None:
    """Both files open with imports on, completions asked in each: answered within the cap, and a
    trivial request answered within 100 ms throughout."""
    backend.default = Reply(chunks=["x"])
    cap_ms = 2000
    async with session(options(backend.url, contextSources=ALL_SOURCES, timeoutMs=cap_ms),
                       workspace=tmp_path.as_uri()) as client:
        small, _ = open_at(client, tmp_path / "small.py", "x = 1\n█")
        def documents() -> list[tuple[str, Any]]:
            ts = open_at(client, tmp_path / "stuck.ts", NEVER_YIELDS_TS + "\n█", "typescript")
            return [ts, open_at(client, tmp_path / "stuck.c", NEVER_YIELDS_C + "\n█", "c"), ts]

        answered, times = await completing_while_pinging(client, small, documents, settle_s=1.0)
    assert max(answered) < cap_ms / 1000 + 0.2, answered
    assert len(times) > 10 and max(times) < PING_CAP_S, sorted(times)[-5:]


async def test_thousands_of_open_documents_cannot_grow_the_context_cache_without_bound(tmp_path: Path) -> None:
    """Completion asked once in each of 400 open documents: the context kept for reuse while typing
    stays bounded (each kept key holds a version of every open document: 400 x 400 otherwise)."""
    from vllm_companion.context import ContextGatherer
    from vllm_companion.context.gather import MAX_KEPT
    from vllm_companion.documents import DocumentStore
    from vllm_companion.privacy import Privacy

    store = DocumentStore()
    gatherer = ContextGatherer(store, Privacy(roots=[tmp_path.as_uri()]))
    uris = [(tmp_path / f"m{i}.py").as_uri() for i in range(400)]
    for i, uri in enumerate(uris):
        store.open(uri, "python", 1, f"def helper_{i}(alpha, beta):\n    return alpha + beta\n")
    for uri in uris:
        await gatherer.gather(uri, 1, ["open-files"], 400, 5.0)
    assert len(gatherer._last) <= MAX_KEPT
    again = await gatherer.gather(uris[-1], 1, ["open-files"], 400, 5.0)
    assert again is await gatherer.gather(uris[-1], 1, ["open-files"], 400, 5.0)  # still reused while typing


async def completing_while_pinging(client: Any, small: Any, documents: Any,
                                   settle_s: float) -> tuple[list[float], list[float]]:
    """Completions in the ``documents()`` it opens (each must answer "x"), while a trivial request
    is timed throughout; then ``settle_s`` more (a parse still running after its completion is
    answered). Returns the completions' and the pings' times."""
    stop = asyncio.Event()
    pinger = asyncio.ensure_future(pings(client, small, stop))
    await asyncio.sleep(0.3)
    answered = []
    for uri, pos in documents():
        t0 = time.perf_counter()
        assert await inline(client, uri, pos) == "x"
        answered.append(time.perf_counter() - t0)
    await asyncio.sleep(settle_s)
    stop.set()
    return answered, await pinger
