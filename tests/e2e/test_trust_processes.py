"""Processes we signal are provably ours, and a launched engine never outlives its editors
(issue 9, points 1-5). Real processes throughout: the language server over stdio, the fake engine
executable behind our guard, and ``setsid sleep`` as the innocent bystander that must survive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_shared_engine import FAKE, engine_pid, launch_options, pid_alive, ready
from tests.leftovers import wait_exec
from tests.lsp_session import as_dict, inline, open_doc, session, wait_for
from vllm_companion.engine.procs import ProcessId, boot_id


@pytest.fixture
def innocent() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process leading its own group, as a reused PID would name."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)  # as `setsid sleep`
    wait_exec(proc.pid, "sleep")
    yield proc
    proc.kill()
    proc.wait()


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"VLLM_COMPANION_CACHE": str(tmp_path / "cache"), "FAKE_ENGINE_ARGS": str(tmp_path / "starts.jsonl"),
            "VLLM_COMPANION_GUARD_INTERVAL_S": "0.5"}


def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "cache" / "run"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def reused(pid: int) -> dict[str, Any]:
    """A record entry for ``pid`` as it was before the PID was reused (another start time)."""
    real = ProcessId.of(pid)
    assert real is not None
    return {"pid": pid, "start": real.start - 12345, "boot": boot_id()}


def cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vllm_companion", *args], env={**os.environ, **env_for(tmp_path)},
                          capture_output=True, text=True, timeout=timeout)


async def test_a_reused_pid_in_the_registry_is_never_signalled(tmp_path: Path, innocent: Any) -> None:
    """1. A stale record names the innocent process (old bare-PID form and identity form)."""
    record = {"state": "ready", "pid": innocent.pid, "engine": reused(innocent.pid), "supervisor": reused(innocent.pid),
              "owners": [reused(innocent.pid)], "endpoint": "http://127.0.0.1:9/v1", "model": "m"}
    (run_dir(tmp_path) / "engine.json").write_text(json.dumps(record))
    stop = cli(tmp_path, "engine", "stop")
    assert stop.returncode == 0 and "no engine is running" in stop.stderr
    assert innocent.poll() is None
    (run_dir(tmp_path) / "engine.json").write_text(json.dumps(record))
    async with session(launch_options(), env=env_for(tmp_path)) as client:  # adopts: starts its own engine
        await wait_for(lambda: ready(client), timeout=30)
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "ready_engine_answer"
    assert innocent.poll() is None


async def test_a_stale_starting_record_expires(tmp_path: Path, innocent: Any) -> None:
    """2. "starting" by a supervisor that is gone (or silent for a minute) blocks nobody."""
    me = ProcessId.of(innocent.pid)
    assert me is not None
    for supervisor, beat in ((reused(innocent.pid), time.time()), (me.to_json(), time.time() - 3600)):
        record = {"state": "starting", "supervisor": supervisor, "beat": beat, "owners": [supervisor]}
        (run_dir(tmp_path) / "engine.json").write_text(json.dumps(record))
        t0 = time.monotonic()
        async with session(launch_options(), env=env_for(tmp_path)) as client:
            await wait_for(lambda c=client: ready(c), timeout=30)
        assert time.monotonic() - t0 < 25
    assert innocent.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
async def test_the_engine_goes_when_its_only_editor_dies(tmp_path: Path, sig: signal.Signals) -> None:
    """3. kill -9 (the OOM killer), SIGTERM (Neovim), SIGHUP (Emacs): the engine is gone in seconds."""
    registry = run_dir(tmp_path) / "engine.json"
    async with session(launch_options(), env=env_for(tmp_path)) as client:
        await wait_for(lambda: ready(client), timeout=30)
        engine = engine_pid(json.loads(registry.read_text()))
        assert engine and pid_alive(engine)
        server = client._server  # type: ignore[attr-defined]
        server.send_signal(sig)
        t0 = time.monotonic()
        await asyncio.wait_for(server.wait(), 20)
        await wait_for(lambda: not pid_alive(engine), timeout=15)
        took = time.monotonic() - t0
    assert took < 15
    assert not registry.exists() or not json.loads(registry.read_text()).get("engine")


async def test_the_server_exits_when_the_editor_process_is_gone(tmp_path: Path) -> None:
    """3. The LSP processId: a server whose editor vanished releases the engine and exits."""
    editor = subprocess.Popen(["sleep", "300"])  # noqa: ASYNC220 - a stand-in editor process
    registry = run_dir(tmp_path) / "engine.json"
    try:
        async with session(launch_options(), env=env_for(tmp_path), process_id=editor.pid) as client:
            await wait_for(lambda: ready(client), timeout=30)
            engine = engine_pid(json.loads(registry.read_text()))
            editor.kill()
            editor.wait()
            server = client._server  # type: ignore[attr-defined]
            await asyncio.wait_for(server.wait(), 20)
            await wait_for(lambda: not pid_alive(engine), timeout=15)
    finally:
        editor.kill()


async def test_engine_stop_asks_the_supervisor_and_spares_the_editors(tmp_path: Path) -> None:
    """4. ``engine stop`` stops the engine through its supervisor; the language server lives on
    and says the engine was stopped (it does not restart it)."""
    registry = run_dir(tmp_path) / "engine.json"
    async with session(launch_options(), env=env_for(tmp_path)) as client:
        await wait_for(lambda: ready(client), timeout=30)
        engine = engine_pid(json.loads(registry.read_text()))
        server = client._server  # type: ignore[attr-defined]
        result = await asyncio.to_thread(cli, tmp_path, "engine", "stop")
        assert result.returncode == 0, result.stderr
        assert not pid_alive(engine)
        assert server.returncode is None  # the editor's server was not signalled
        await wait_for(lambda: any("stopped" in as_dict(s).get("message", "") for s in client.statuses), timeout=10)
        await asyncio.sleep(3)
        assert len((tmp_path / "starts.jsonl").read_text().splitlines()) == 1  # not restarted


async def test_registry_is_private_loopback_only_and_the_engine_needs_its_key(tmp_path: Path) -> None:
    """5. 0700 directory, 0600 files, the per-engine key (not on the command line) is required."""
    run = run_dir(tmp_path)
    os.chmod(run, 0o777)  # a directory others can write to is fixed
    registry = run / "engine.json"
    async with session(launch_options(), env=env_for(tmp_path)) as client:
        await wait_for(lambda: ready(client), timeout=30)
        assert stat.S_IMODE(run.stat().st_mode) == 0o700
        assert stat.S_IMODE(registry.stat().st_mode) == 0o600
        for log in (run / "logs").iterdir():
            assert stat.S_IMODE(log.stat().st_mode) == 0o600
        record = json.loads(registry.read_text())
        key = record["apiKey"]
        assert len(key) >= 24
        for pid in _group(engine_pid(record)):
            assert key not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")  # noqa: ASYNC240
        import httpx2 as httpx

        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{record['endpoint']}/models")).status_code == 401
            headers = {"Authorization": f"Bearer {key}"}
            assert (await http.get(f"{record['endpoint']}/models", headers=headers)).status_code == 200
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "ready_engine_answer"  # the server uses the key


def test_a_registry_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    from vllm_companion.engine.registry import EngineRegistry
    from vllm_companion.paths import UnsafeDirectory

    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    os.chown(other, 65534, 65534)
    with pytest.raises(UnsafeDirectory):
        EngineRegistry(other)


def test_a_record_naming_a_remote_endpoint_is_discarded(tmp_path: Path) -> None:
    from vllm_companion.engine.registry import EngineRegistry

    registry = EngineRegistry(run_dir(tmp_path))
    me = ProcessId.me().to_json()
    record = {"state": "ready", "engine": me, "owners": [me], "endpoint": "http://203.0.113.5:8000/v1"}
    registry.path.write_text(json.dumps(record))
    read = registry.read()
    assert read.endpoint is None and read.engine is None and read.owners == (ProcessId.me(),)


def _group(pgid: int | None) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


assert FAKE  # the fake engine executable runs behind the guard in every test here
