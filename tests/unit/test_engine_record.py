"""The registry record as a typed record (engine/record.py): the file's form round-trips, each
change is a pure function, and only engine/registry.py writes the file (issue 21, point 4)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import time
from pathlib import Path

from vllm_companion.engine import record as rec
from vllm_companion.engine.procs import ProcessId
from vllm_companion.engine.registry import EngineRegistry
from vllm_companion.engine.supervised import Extras

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "vllm_companion"


def test_the_file_form_round_trips_with_the_keys_it_always_had() -> None:
    me, now = ProcessId.me(), time.time()
    started = rec.claimed(rec.EMPTY, me, "k3y", now, keep_owners=False)
    ready = rec.served(rec.progressed(started, me, Extras(fleet="1 of 2 ready", front_pid=None,
                                                          front_url="http://127.0.0.1:9/v1"), now),
                       8000, "http://127.0.0.1:8000/v1", "m", "/tmp/x.log", True, "plan")
    written = rec.to_json(ready)
    assert {"engine", "supervisor", "owners", "apiKey", "endpoint", "frontUrl", "fleet", "keepAlive"} <= set(written)
    assert written["engine"] == me.to_json() and written["state"] == "ready"
    assert rec.parse(json.loads(json.dumps(written)), now) == ready


def test_the_next_edit_process_is_recorded_while_ready_and_dropped_when_not() -> None:
    me, now = ProcessId.me(), time.time()
    started = rec.claimed(rec.EMPTY, me, "k", now, keep_owners=False)
    ready = Extras(next_edit_pid=os.getpid(), next_edit_endpoint="http://127.0.0.1:9001/v1", next_edit_model="sweep")
    both = rec.served(rec.progressed(started, me, ready, now), 8000, "http://127.0.0.1:8000/v1", "m", "l", False, "p")
    written = rec.to_json(both)
    assert written["nextEditEndpoint"] == "http://127.0.0.1:9001/v1" and written["nextEditModel"] == "sweep"
    assert written["nextEdit"] == me.to_json() and rec.parse(json.loads(json.dumps(written)), now) == both
    assert both.guards == (me, None, me)
    down = rec.progressed(both, me, Extras(next_edit_pid=os.getpid()), now)  # restarting: not ready
    assert (down.next_edit, down.next_edit_endpoint, down.next_edit_model) == (me, None, None)
    assert "nextEditEndpoint" not in rec.to_json(down)


def test_joining_leaving_and_claiming_keep_one_entry_per_owner() -> None:
    me = ProcessId.me()
    twice = rec.joined(rec.joined(rec.EMPTY, me), me)
    assert twice.owners == (me,) and rec.left(twice, me).owners == ()
    taken = rec.claimed(twice, me, "k", 1.0, keep_owners=True)
    assert taken.owners == (me,) and taken.owned_by(me) and taken.state == "starting"
    assert rec.beaten(rec.EMPTY, me, 5.0) == rec.EMPTY  # not ours: left alone


def test_the_registry_writes_what_a_change_returns_and_removes_an_empty_record(tmp_path: Path) -> None:
    registry = EngineRegistry(tmp_path / "run")
    before, after = registry.change(lambda r: rec.claimed(r, registry.me, "k", time.time(), keep_owners=False))
    assert before == rec.EMPTY and registry.read() == after and registry.path.exists()
    registry.change(lambda r: rec.EMPTY)
    assert not registry.path.exists() and registry.read() == rec.EMPTY


def test_arriving_and_leaving_decide_on_the_record_they_change(tmp_path: Path) -> None:
    """``decide`` returns what the step decided under the lock (attach or start, stop or not),
    beside the records before and after: no second read, no closure to fish it out of."""
    # another live process of ours (not pytest's parent: a backgrounded run's parent may be gone)
    other = subprocess.Popen(["sleep", "60"])
    try:
        _arrive_and_leave(EngineRegistry(tmp_path / "run"), ProcessId.of(other.pid))
    finally:
        other.kill()
        other.wait()


def _arrive_and_leave(registry: EngineRegistry, parent: ProcessId | None) -> None:
    assert parent is not None
    first = registry.decide(lambda r: rec.entered(r, registry.me, "k", time.time()))
    assert first.decision is False and first.after.state == "starting" and first.after.api_key == "k"
    second = registry.decide(lambda r: rec.entered(r, parent, "other", time.time()))
    assert second.decision is True and second.after.api_key == "k"  # attached to the one being started
    assert second.after.owners == (registry.me, parent)
    stay = registry.decide(lambda r: rec.departed(r, registry.me, None))
    assert stay.decision is False and stay.after.owners == (parent,) and registry.path.exists()
    last = registry.decide(lambda r: rec.departed(r, parent, None))
    assert last.decision is True and last.after == rec.EMPTY and not registry.path.exists()
    registry.decide(lambda r: rec.entered(r, registry.me, "k", time.time()))
    asked = registry.decide(lambda r: rec.departed(r, parent, True))  # engine start --foreground leaving
    assert asked.decision is True and not registry.path.exists()


def test_only_the_registry_writes_the_record_and_only_record_py_builds_one() -> None:
    """One writer module: nothing else names the file, and records are made only by record.py's
    changes (so every field a record can carry is decided in one place)."""
    named, built = set(), set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "engine.json" in text:
            named.add(path.relative_to(PACKAGE).as_posix())
        for node in ast.walk(ast.parse(text)):
            called = getattr(node.func, "id", getattr(node.func, "attr", "")) if isinstance(node, ast.Call) else ""
            if called == "EngineRecord":
                built.add(path.relative_to(PACKAGE).as_posix())
    assert named == {"engine/registry.py"}
    assert built == {"engine/record.py"}
