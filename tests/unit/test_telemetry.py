"""Acceptance telemetry below the edge: the store (bounded, private), the tracker's states and
survival, what is learned from accepts, the adaptive debounce, the reports."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vllm_companion.completion.debounce import AdaptiveDebounce
from vllm_companion.documents import Change, DocumentStore
from vllm_companion.telemetry import Acceptance, EventStore, cursor_kind, files, store
from vllm_companion.telemetry.events import SCHEMA, Event, summarize
from vllm_companion.telemetry.report import one_line, table
from vllm_companion.telemetry.tracker import Suggestion
from vllm_companion.telemetry.tuning import tune


def test_store_is_private_bounded_and_holds_no_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "MAX_ROWS", 5)
    events = EventStore(tmp_path / "state" / "t.sqlite3")
    for i in range(8):
        events.add(Event("shown", "python", "end-of-line", "m", 1, i))
    assert [e.chars for e in events.events()] == [3, 4, 5, 6, 7]
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "t.sqlite3").stat().st_mode) == 0o600


def test_an_unusable_store_turns_telemetry_off_without_raising(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    events = EventStore(tmp_path / "file" / "t.sqlite3")  # its folder is a file
    events.add(Event("shown", "python", "k", "m", 1, 1))
    assert events.events() == []


def test_an_open_store_keeps_its_lock_and_its_wal(tmp_path: Path) -> None:
    """Closing the descriptor the store was checked through dropped SQLite's shared lock on it
    (POSIX locks are the process's): another program closing its connection then took itself for
    the last user and deleted the ``-wal`` this connection still wrote to. Once every connection is
    closed, no checked descriptor is left open."""
    path = tmp_path / "state" / "t.sqlite3"
    EventStore(path).events()  # the folder
    first = files.open_db(path, create=True, busy_s=1, schema=SCHEMA)
    assert first is not None
    first.execute("PRAGMA journal_mode=WAL")
    first.execute(SCHEMA)
    second = files.open_db(path, create=False, busy_s=1, schema=SCHEMA)  # the WAL store exists now
    assert second is not None
    first.close()
    second.execute("SELECT COUNT(*) FROM events").fetchall()  # SQLite's shared lock, for as long as it is open
    other = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); db.execute('SELECT 1 FROM events'); db.close()"
    subprocess.run([sys.executable, "-c", other, str(path)], check=True, timeout=30)
    assert Path(f"{path}-wal").exists()  # the other program saw us: it left the -wal in place
    second.close()
    assert (path.stat().st_dev, path.stat().st_ino) not in files._HELD
    assert not [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}") == str(path)]


def make(tmp_path: Path, checks: tuple[float, float] = (30, 120),
         on_accept: Callable[[Suggestion], None] = lambda item: None) -> tuple[Acceptance, DocumentStore, EventStore]:
    docs, events = DocumentStore(), EventStore(tmp_path / "t.sqlite3")
    return Acceptance(events, docs, checks, True, on_accept=on_accept, notice=lambda text: None), docs, events


def names(events: EventStore) -> list[str]:
    return [e.event for e in events.events()]


async def test_shown_then_another_shown_dismisses_the_first(tmp_path: Path) -> None:
    tracker, _, events = make(tmp_path)
    a = tracker.issued("file:///a.py", 0, 4, "1", "python", "end-of-line", "m")
    b = tracker.issued("file:///a.py", 0, 5, "2", "python", "end-of-line", "m")
    tracker.shown(a)
    tracker.shown(a)  # a second report of the same show counts once
    tracker.shown(b)
    tracker.closed("file:///a.py")
    assert names(events) == ["shown", "dismissed", "shown", "dismissed"]


async def test_partial_then_accept_and_accept_without_show(tmp_path: Path) -> None:
    accepted: list[str] = []
    tracker, _, events = make(tmp_path, on_accept=lambda item: accepted.append(item.id))
    a = tracker.issued("file:///a.py", 0, 0, "foo(bar)", "python", "mid-line", "m")
    tracker.shown(a)
    tracker.partially_accepted(a, 3)
    assert tracker.accepted(a) is not None and tracker.accepted(a) is None  # the second is ignored
    b = tracker.issued("file:///a.py", 1, 0, "x", "python", "empty-line", "m")
    tracker.accepted(b)
    assert names(events) == ["shown", "partial", "accepted", "shown", "accepted"]
    assert events.events()[1].value == 3.0 and accepted == [a, b]
    assert tracker.accepted("no-such-id") is None
    tracker.close()


async def test_survival_is_the_share_of_accepted_text_still_there(tmp_path: Path) -> None:
    tracker, docs, events = make(tmp_path, (0.05, 0.15))
    text = "total = sum(prices)\nreturn total"
    docs.open("file:///a.py", "python", 1, "def f(prices):\n    " + text.replace("\n", "\n    ") + "\n")
    sid = tracker.issued("file:///a.py", 1, 4, text, "python", "empty-line", "m")
    tracker.accepted(sid)
    await asyncio.sleep(0.1)
    docs.change("file:///a.py", 2, [Change("def f(prices):\n    return 0\n")], "utf-16")
    await asyncio.sleep(0.15)
    got = {e.event: e.value for e in events.events()}
    assert got["survived30"] == pytest.approx(1.0, abs=0.05) and got["survived120"] < 0.5


def test_cursor_kinds() -> None:
    assert cursor_kind("x = f(", ")") == "mid-line"
    assert cursor_kind("x = ", "  ") == "end-of-line"
    assert cursor_kind("    ", "") == "empty-line"


def _events(language: str, lines: int, shown: int, accepted: int, chars: int = 40) -> list[Event]:
    return [Event("shown", language, "k", "m", lines, chars)] * shown + [
        Event("accepted", language, "k", "m", lines, chars)] * accepted


def test_learning_needs_evidence_then_follows_it() -> None:
    assert tune(_events("python", 3, 10, 0), "python", 128).single_line is False  # too few samples
    rejected_multi = _events("python", 3, 30, 2) + _events("python", 1, 30, 15)
    assert tune(rejected_multi, "python", 128).single_line is True
    assert tune(rejected_multi, "go", 128).single_line is False  # per language
    liked_multi = _events("python", 3, 30, 12) + _events("python", 1, 30, 15)
    assert tune(liked_multi, "python", 128).single_line is False
    assert tune(_events("python", 1, 40, 30, chars=100), "python", 128).max_tokens == 61  # (100 // 3 + 1) * 1.8
    assert tune(_events("python", 1, 40, 30, chars=5000), "python", 128).max_tokens == 128  # never above the setting
    assert tune(_events("python", 1, 40, 10), "python", 128).max_tokens is None


def test_adaptive_debounce_follows_the_typing_rhythm() -> None:
    typing = AdaptiveDebounce()
    assert typing.delay_ms(150) == 150
    t = 0.0
    for _ in range(20):
        t += 0.3
        typing.keystroke(t)
    assert typing.delay_ms(150) == 375  # 300 ms * 1.25
    t += 5.0  # a pause is not a typing interval
    typing.keystroke(t)
    for _ in range(40):
        t += 0.04
        typing.keystroke(t)
    assert typing.delay_ms(150) == 100  # the floor


def test_reports(tmp_path: Path) -> None:
    assert "no suggestions" in table([]) and one_line([]) == "no suggestions shown yet"
    events = [*_events("python", 1, 4, 1), Event("survived120", "python", "k", "m", 1, 40, 0.5)]
    assert one_line(events) == "1 of 4 suggestions accepted (25%), 50% of accepted text still there after 2 min"
    assert summarize(events, "language")["python"]["rate"] == 0.25
    assert "python" in table(events) and "25%" in table(events)


def test_a_long_accept_is_judged_by_its_ends_quickly() -> None:
    """Survival compares at most ``CAP`` characters (issue 19: 4,000 stalled the loop 4.4 s)."""
    import time

    from vllm_companion.telemetry import survival

    text = "".join(f"    v{i} = f(x[{i}], y)  # step {i}\n" for i in range(5000)).rstrip("\n")
    doc = ["def g(x, y):\n", *text.splitlines(keepends=True), "\n", "    return v0\n"]
    start = time.perf_counter()
    assert survival.share(text, survival.regions(doc, 1, text)) == pytest.approx(1.0)
    kept_head = doc[: len(doc) // 2] + ["    pass\n"] * 10
    assert survival.share(text, survival.regions(kept_head, 1, text)) == pytest.approx(0.5, abs=0.05)
    assert survival.share(text, None) == 0.0
    assert time.perf_counter() - start < 0.5
