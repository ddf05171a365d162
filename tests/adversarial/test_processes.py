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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_shared_engine import launch_options, ready
from tests.leftovers import track, wait_gone
from tests.lsp_session import inline_eventually, open_doc, session, wait_for
from vllm_companion.engine.procs import ProcessId, boot_id, members, reap, signal_group, ticks_now


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
    time.sleep(0.2)
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
    from vllm_companion.engine import registry as registry_module
    from vllm_companion.engine.manager import EngineManager
    from vllm_companion.engine.registry import EngineRegistry

    def slow_model(plan: Any) -> str:
        time.sleep(3)  # three times the record's (shortened) expiry
        return "fake-model"

    monkeypatch.setattr(registry_module, "STARTING_EXPIRE_S", 1.0)
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
    from vllm_companion.engine.plan import plan_launch
    from vllm_companion.engine.supervisor import EngineState, Policy, ProcessSupervisor

    env = env_for(tmp_path, ["slow"])
    guard = [sys.executable, "-m", GUARD_MODULE, str(tmp_path / "no-record" / "engine.json"), "--"]
    (tmp_path / "no-record").mkdir(mode=0o700)

    def build(plan: Any, port: int) -> EngineCommand:
        return EngineCommand([*guard, *FAKE, "--port", str(port), "--served-model-name", "m"], env)

    sup = ProcessSupervisor(plan_launch([]), build, tmp_path / "logs", policy=Policy(stop_grace_s=3))
    began = time.monotonic()
    await sup.start()
    try:
        assert not await sup.wait_ready(30)
        assert time.monotonic() - began < 15 and sup.state is EngineState.STOPPED
    finally:
        await sup.stop()
