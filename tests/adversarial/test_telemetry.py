"""Acceptance telemetry attacked: what the local store holds, where it lives and how busy it is
must never stall, slow or break completion, nor reach another program's files (issue 19, point 7).

Over real stdio where it is the server's behaviour (``VLLM_COMPANION_STATE`` points the server at
a folder per test); ``vllm-companion stats`` as the user runs it, in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline_params, open_doc, options, session, wait_for
from vllm_companion.telemetry.events import SCHEMA, Event

ACCEPT = "vllmCompanion.didAcceptCompletion"
SHOWN = "textDocument/didShowCompletion"


def code(chars: int) -> str:
    """``chars`` characters of real Python: this package's own sources, indented into a body."""
    root = Path(__file__).resolve().parents[2] / "server" / "vllm_companion"
    source = "".join(p.read_text() for p in sorted(root.rglob("*.py")))
    body = "".join(f"    {line}" for line in source.splitlines(keepends=True))
    assert len(body) >= chars
    return body[:chars].rstrip("\n")


def telemetry_session(backend: FakeBackend, state: Path, **completion: Any) -> Any:
    return session(options(backend.url, prefetch=False, **completion), env={"VLLM_COMPANION_STATE": str(state)})


def stats(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vllm_companion", "stats", *args], capture_output=True, text=True,
                          env={**os.environ, "VLLM_COMPANION_STATE": str(state)}, timeout=30, check=False)


def item_json(item: types.InlineCompletionItem) -> dict[str, Any]:
    assert item.command is not None
    return {"insertText": item.insert_text, "command": {"title": item.command.title, "command": item.command.command,
                                                        "arguments": item.command.arguments}}


async def timed(awaitable: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = await asyncio.wait_for(awaitable, 30)
    return result, time.perf_counter() - start


async def complete(client: Any, uri: str, pos: types.Position) -> tuple[types.InlineCompletionItem, float]:
    result, took = await timed(client.text_document_inline_completion_async(inline_params(uri, pos)))
    assert isinstance(result, types.InlineCompletionList) and result.items
    return result.items[0], took


async def trivial(client: Any) -> float:
    """A request that costs the server nothing: the accept command for an unknown suggestion."""
    _, took = await timed(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=ACCEPT, arguments=["no-such-suggestion"])))
    return took


async def accept(client: Any, item: types.InlineCompletionItem) -> Any:
    assert item.command is not None
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=ACCEPT, arguments=item.command.arguments))


def replace_text(client: Any, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


def make_store(path: Path, wal: bool = True) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute(SCHEMA)
    os.chmod(path, 0o600)
    return db


# -- the survival comparison -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [4_000, 200_000])
async def test_long_accept_cannot_stall_the_server(backend: FakeBackend, tmp_path: Path, size: int) -> None:
    """Survival compared a 4,000-character accept with 20,000 characters of document, on the event
    loop: 4.4 s during which nothing was answered."""
    text = code(size)
    backend.script = [Reply(chunks=[text[i : i + 4000] for i in range(0, len(text), 4000)])]
    backend.default = Reply(chunks=["1"])
    long_ok = {"ablate": ["loops", "scope", "max-lines", "stop"]}  # let a suggestion this long through
    async with telemetry_session(backend, tmp_path / "state", survivalChecksS=[0.2, 0.5], **long_ok) as client:
        uri, pos = open_doc(client, "def f(prices, weights, index, offset, factor):\n█\n")
        item, _ = await complete(client, uri, pos)
        assert isinstance(item.insert_text, str) and len(item.insert_text) > size * 0.95
        after = ("    x = [" + "weights[index] * offset, " * 80 + "]\n") * 8
        replace_text(client, uri, 2, f"def f(prices, weights, index, offset, factor):\n{item.insert_text}\n{after}")
        await accept(client, item)
        end = time.perf_counter() + 0.8  # both survival checks run meanwhile
        took = []
        while time.perf_counter() < end:
            took.append(await trivial(client))
            await asyncio.sleep(0.02)
        assert max(took) < 0.2, f"a trivial request took {max(took):.2f} s"
        _, completion_s = await complete(client, *open_doc(client, "y = █\n"))
        assert completion_s < 1.0
    python = json.loads(stats(tmp_path / "state", "--json").stdout)["language"]["python"]
    assert python["survived30"] > 0.9 and python["survived120"] > 0.9  # bounded, still right


# -- rows someone else wrote -------------------------------------------------------------------------

GOOD = [("shown", "python", "end-of-line", "m", 1, 10, None), ("accepted", "python", "end-of-line", "m", 1, 10, None)]
POISON = [
    ("shown", "python", "end-of-line", "m", "two", 10, None),  # lines='two': TypeError in the learner
    ("accepted", "python", "end-of-line", "m", 1, "many", None),
    ("shown", None, "end-of-line", "m", 1, 10, None),  # language NULL: stats sorted None with str
    ("shown", "python", None, None, 1, 10, None),
    ("accepted", "python", "end-of-line", "m", -3, -40, None),
    ("survived30", "python", "end-of-line", "m", 1, 10, -2.5),
    ("survived120", "python", "end-of-line", "m", 1, 10, 1e300),
    ("survived120", "python", "end-of-line", "m", 1, 10, "all of it"),
    ("partial", "python", "end-of-line", "m", 1, 10, None),
    ("shown", "x" * 2_000_000, "end-of-line", "m", 1, 10, None),  # a 2 MB language name
    ("shown", "python", "end-of-line", b"\x00" * 1000, 1, 10, None),
    ("no-such-event", "python", "end-of-line", "m", 1, 10, None),
    (None, None, None, None, None, None, None),
]


async def test_poisoned_rows_cannot_break_completion_or_stats(backend: FakeBackend, tmp_path: Path) -> None:
    """One bad row (``lines='two'``, ``language`` NULL) made every completion fail with TypeError
    and ``vllm-companion stats`` crash."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    db = make_store(state / "telemetry.sqlite3")
    rows = [(time.time(), *row) for row in (GOOD * 20 + POISON * 2)]
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()
    backend.default = Reply(chunks=["compute(1)"])
    async with telemetry_session(backend, state) as client:
        uri, pos = open_doc(client, "x = █\n")
        for _ in range(3):  # the learner has read the store by the second
            item, _ = await complete(client, uri, pos)
            assert item.insert_text == "compute(1)"
            await asyncio.sleep(0.2)
    for args in ((), ("--json",)):
        out = stats(state, *args)
        assert out.returncode == 0, out.stderr
    python = json.loads(stats(state, "--json").stdout)["language"]
    assert set(python) == {"python"} and python["python"]["shown"] >= 20  # the good rows count, the bad do not


# -- a busy database ---------------------------------------------------------------------------------


async def test_locked_database_cannot_slow_completion(backend: FakeBackend, tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    """Another program holding the store's write lock: each event waited the busy timeout on the
    event loop, 2 s added to every completion. Now the event is dropped and counted."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    locker = make_store(state / "telemetry.sqlite3")
    locker.execute("BEGIN EXCLUSIVE")
    backend.default = Reply(chunks=["compute(1)"])
    try:
        async with telemetry_session(backend, state) as client:
            uri, pos = open_doc(client, "x = █\n")
            took = []
            for _ in range(6):
                item, completion_s = await complete(client, uri, pos)
                took.append(completion_s)
                client.protocol.notify(SHOWN, {"item": item_json(item)})  # a write: dismissed + shown
            assert max(took) < 0.5, took
            # The writer waits store.BUSY_S (2 s) for the lock per event, off the request path.
            await wait_for(lambda: "telemetry: 2 events dropped" in capfd.readouterr().err, timeout=15)
    finally:
        locker.rollback()
        locker.close()


# -- where the store lives ---------------------------------------------------------------------------


def unsafe_folder(kind: str, tmp_path: Path) -> Path:
    """A state folder the store must refuse."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    if kind == "symlink":
        (tmp_path / "state").symlink_to(real)
        return tmp_path / "state"
    if kind == "world-writable":
        real.chmod(0o777)
        return real
    if os.getuid() != 0:
        return Path("/")  # owned by root: refused before anything is created there
    os.chown(real, 65534, 65534)
    return real


@pytest.mark.parametrize("kind", ["symlink", "other-owner", "world-writable"])
async def test_unsafe_state_folder_cannot_break_the_accept_command(backend: FakeBackend, tmp_path: Path,
                                                                   kind: str) -> None:
    """UnsafeDirectory came out of the accept command as an error to the editor. Now: the command
    answers, telemetry is off, and the user is told once."""
    state = unsafe_folder(kind, tmp_path)
    before = sorted(os.listdir(state))
    mode = stat.S_IMODE(state.lstat().st_mode)
    backend.default = Reply(chunks=["compute(1)"])
    async with telemetry_session(backend, state) as client:
        uri, pos = open_doc(client, "x = █\n")
        for _ in range(3):
            item, _ = await complete(client, uri, pos)
            client.protocol.notify(SHOWN, {"item": item_json(item)})
            assert await accept(client, item) is None  # an answer, not an error
        await complete(client, uri, pos)
        told = [m.message for m in client.messages if "telemetry is off" in m.message]
        assert len(told) == 1 and str(state) in told[0]
    assert sorted(os.listdir(state)) == before and stat.S_IMODE(state.lstat().st_mode) == mode


def other_database(path: Path) -> bytes:
    """Another program's SQLite file: rollback journal, readable by others."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('theirs')")
    db.commit()
    db.close()
    path.chmod(0o644)
    return path.read_bytes()


def journal_mode(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
async def test_store_link_cannot_reach_another_programs_database(backend: FakeBackend, tmp_path: Path,
                                                                 link: str) -> None:
    """telemetry.sqlite3 a link to another program's database: it was chmod-ed 0600 and converted
    to WAL through the link. Now it is refused and left as it was."""
    theirs = tmp_path / "other-app.sqlite3"
    content = other_database(theirs)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    if link == "symlink":
        (state / "telemetry.sqlite3").symlink_to(theirs)
    else:
        os.link(theirs, state / "telemetry.sqlite3")
    backend.default = Reply(chunks=["compute(1)"])
    async with telemetry_session(backend, state) as client:
        uri, pos = open_doc(client, "x = █\n")
        item, _ = await complete(client, uri, pos)
        client.protocol.notify(SHOWN, {"item": item_json(item)})
        assert await accept(client, item) is None
        await complete(client, uri, pos)
        told = [m.message for m in client.messages if "telemetry is off" in m.message]
    out = stats(state)
    assert theirs.read_bytes() == content and stat.S_IMODE(theirs.stat().st_mode) == 0o644
    assert journal_mode(theirs) == "delete"
    assert sorted(os.listdir(tmp_path)) == ["other-app.sqlite3", "state"]  # no -wal, no -journal beside it
    assert len(told) == 1 and out.returncode == 0 and "no suggestions shown yet" in out.stdout


def test_flood_of_events_cannot_grow_the_queue_or_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events faster than a locked database takes them: the caller never waits, the queue stays
    bounded, the surplus is dropped and counted."""
    from vllm_companion.telemetry import store

    monkeypatch.setattr(store, "QUEUE_MAX", 8)
    (tmp_path / "state").mkdir(mode=0o700)
    locker = make_store(tmp_path / "state" / "telemetry.sqlite3")
    locker.execute("BEGIN EXCLUSIVE")
    events = store.EventStore(tmp_path / "state" / "telemetry.sqlite3")
    start = time.perf_counter()
    for i in range(500):
        events.add(Event("shown", "python", "k", "m", 1, i))
    assert time.perf_counter() - start < 0.1
    assert events.dropped >= 490 and events.failure is None
    locker.rollback()
    locker.close()
    events.close()


# -- a database someone else made --------------------------------------------------------------------

FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def planted(state: Path, *statements: str) -> Path:
    """A store made by someone else (a repository the state folder points into, another program of
    the user's): our table, or something named like it, plus whatever ``statements`` add."""
    state.mkdir(mode=0o700, exist_ok=True)
    path = state / "telemetry.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for sql in statements:
            db.execute(sql)
    path.chmod(0o600)
    return path


def test_planted_view_cannot_hang_stats(tmp_path: Path) -> None:
    """``events`` a view over an endless recursive query (with a ``rowid`` column, so the read's
    ORDER BY works): ``vllm-companion stats`` and doctor read it forever."""
    state = tmp_path / "state"
    planted(state, "CREATE VIEW events AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                   "SELECT x AS rowid, 1e18 AS ts, 'shown' AS event, 'python' AS language, 'k' AS kind, 'm' AS model, "
                   "1 AS lines, 1 AS chars, NULL AS value FROM c")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "vllm_companion", "stats"], capture_output=True, text=True,
                         env={**os.environ, "VLLM_COMPANION_STATE": str(state)}, timeout=20, check=False)
    assert time.perf_counter() - start < 10
    assert out.returncode == 0 and "no suggestions shown yet" in out.stdout, out.stderr


def test_planted_trigger_cannot_run_or_hang_the_writer(tmp_path: Path) -> None:
    """Our table with a trigger on it: the writer's first insert ran it (here: a write elsewhere,
    then a query that never ends, and the writer is gone for good). Now a store holding anything
    this program did not make is refused, before anything in it runs or is converted to WAL."""
    from vllm_companion.telemetry import store

    path = planted(tmp_path / "state", SCHEMA, "CREATE TABLE notes (body TEXT)",
                   f"CREATE TRIGGER t AFTER INSERT ON events BEGIN INSERT INTO notes VALUES ('ran'); {FOREVER}; END")
    events = store.EventStore(path)
    events.add(Event("shown", "python", "k", "m", 1, 1))
    assert events.flush(3.0) and events.failure is not None and "did not make" in events.failure
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    assert journal_mode(path) == "delete"
    events.close()


# -- the folders above the store ---------------------------------------------------------------------


def above(kind: str, tmp_path: Path) -> Path:
    """A state folder below a folder someone else may rename things in."""
    shared = tmp_path / "shared"
    shared.mkdir()
    if kind == "other-owner-parent":
        if os.getuid() != 0:
            pytest.skip("needs root to give a folder away")
        os.chown(shared, 65534, 65534)
    else:
        shared.chmod(0o777)
    if kind == "symlinked-writable-parent":
        (tmp_path / "mine").symlink_to(shared)
        return tmp_path / "mine" / "state"
    return shared / "state"


@pytest.mark.parametrize("kind", ["writable-parent", "symlinked-writable-parent", "other-owner-parent"])
def test_state_folder_below_a_folder_others_control_is_refused(tmp_path: Path, kind: str) -> None:
    """The checks hold the state folder's descriptor, but SQLite opens the store (and later its
    -wal and -shm) by path: whoever may rename entries in a folder above could swap ours for theirs
    between the checks and SQLite's open. So every folder above must be ours or root's, and
    writable by nobody else unless sticky (``/tmp``)."""
    from vllm_companion.telemetry import store

    state = above(kind, tmp_path)
    events = store.EventStore(state / "telemetry.sqlite3")
    events.add(Event("shown", "python", "k", "m", 1, 1))
    assert events.flush(3.0) and events.failure is not None and "others" in events.failure
    assert not state.exists()
    events.close()


def test_symlinked_parent_of_our_own_is_still_used(tmp_path: Path) -> None:
    """The other side: a link above the state folder (``~/.local -> /data/me/.local``) is fine when
    every folder it leads through is ours."""
    from vllm_companion.telemetry import store

    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    events = store.EventStore(tmp_path / "link" / "state" / "telemetry.sqlite3")
    events.add(Event("shown", "python", "k", "m", 1, 1))
    assert events.flush(3.0) and events.failure is None
    assert [e.event for e in events.events()] == ["shown"]
    events.close()


@pytest.mark.parametrize("target", ["missing", "empty-file"])
def test_store_swapped_for_a_link_after_the_check_is_refused_untouched(tmp_path: Path, target: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The store swapped for a symlink between the checks and SQLite's open. To a path that does
    not exist: SQLite created the link's target. To another program's (empty) file: the identity
    check compared inode numbers after closing the checked descriptor, and the link swapped in got
    the freed number (this file system reuses it at once), so our table went into their file."""
    from vllm_companion.telemetry import store

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    path, theirs = state / "telemetry.sqlite3", tmp_path / "theirs"
    if target == "empty-file":
        theirs.touch()
    connect = sqlite3.connect

    def swapped(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        path.unlink()
        path.symlink_to(theirs)
        return connect(*args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(sqlite3, "connect", swapped)
    events = store.EventStore(path)
    events.add(Event("shown", "python", "k", "m", 1, 1))
    assert events.flush(3.0) and events.failure is not None
    monkeypatch.undo()
    assert theirs.exists() == (target == "empty-file") and (target == "missing" or theirs.read_bytes() == b"")
    events.close()


# -- floods from the editor --------------------------------------------------------------------------


async def test_thousands_of_accepts_cannot_grow_survival_timers(tmp_path: Path) -> None:
    """Each accept started two survival timers (30 s, 2 min), each holding the suggestion's text,
    whatever the number of accepts: only the suggestions were bounded (``KEEP``), not the timers."""
    from vllm_companion.documents import DocumentStore
    from vllm_companion.telemetry import EventStore, tracker

    events = EventStore(tmp_path / "state" / "telemetry.sqlite3")
    acceptance = tracker.Acceptance(events, DocumentStore(), tracker.SURVIVAL_S, True, on_accept=lambda item: None,
                                     notice=lambda text: None)
    before = len(asyncio.all_tasks())
    for i in range(3000):
        sid = acceptance.issued("file:///a.py", 0, 0, f"x = {i}\n" * 50, "python", "end-of-line", "m")
        assert acceptance.accepted(sid) is not None
    assert len(asyncio.all_tasks()) - before <= 2 * tracker.KEEP
    acceptance.close()


async def test_deeply_nested_notification_cannot_raise_in_the_server(backend: FakeBackend, tmp_path: Path,
                                                                      capfd: pytest.CaptureFixture[str]) -> None:
    """The edge turned whole params back into plain data, recursively: params nested a few hundred
    deep raised RecursionError in the handler (logged with the whole params). Only the id is read."""
    nested: Any = "s1"
    for _ in range(600):
        nested = [nested]
    async with telemetry_session(backend, tmp_path / "state") as client:
        for method, params in ((SHOWN, {"item": {"command": {"arguments": nested}}}),
                               ("textDocument/didPartiallyAcceptCompletion", {"item": nested, "acceptedLength": 1})):
            # as raw JSON: the test client's own converter recurses too
            client.protocol._send_data({"jsonrpc": "2.0", "method": method, "params": params})
        assert await trivial(client) < 1.0
    assert "FeatureNotificationError" not in capfd.readouterr().err
