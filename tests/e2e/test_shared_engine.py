"""Two language servers share one local engine; the engine dies mid-session and comes back.

The engine is the fake engine executable (``engine.command``), so this runs anywhere; the real
engines are exercised in test_real_engine.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.lsp_session import as_dict, inline, inline_eventually, open_doc, session, wait_for

FAKE = [sys.executable, str(Path(__file__).resolve().parent.parent / "fake_engine.py")]


def launch_options() -> dict[str, Any]:
    return {
        "backend": {"launch": True},
        "engine": {"command": FAKE, "device": "cpu", "model": "fake-model", "stallTimeoutS": 20},
        "completion": {"debounceMs": 0},
    }


def ready(client: Any) -> bool:
    return any(as_dict(s).get("state") == "ready" and as_dict(s).get("model") for s in client.statuses)


def engine_pid(record: dict[str, Any]) -> int | None:
    """The engine's process group leader (its guard) as the registry records it."""
    engine = record.get("engine")
    return engine.get("pid") if isinstance(engine, dict) else None


def current_pid(registry: Path) -> int | None:
    return engine_pid(json.loads(registry.read_text())) if registry.exists() else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_servers_share_one_engine_which_restarts_and_stops_with_the_last(tmp_path: Path) -> None:
    env = {"VLLM_COMPANION_CACHE": str(tmp_path / "cache"), "FAKE_ENGINE_ARGS": str(tmp_path / "starts.jsonl")}
    registry = tmp_path / "cache" / "run" / "engine.json"
    starts = tmp_path / "starts.jsonl"
    async with session(launch_options(), env=env) as first:
        await wait_for(lambda: ready(first), timeout=30)
        uri, pos = open_doc(first, "x = █\n")
        assert await inline(first, uri, pos) == "ready_engine_answer"
        async with session(launch_options(), env=env) as second:
            await wait_for(lambda: ready(second), timeout=30)
            uri2, pos2 = open_doc(second, "y = █\n")
            assert await inline(second, uri2, pos2) == "ready_engine_answer"
            record = json.loads(registry.read_text())
            assert len(starts.read_text().splitlines()) == 1  # one engine for both
            assert len(record["owners"]) == 2

            os.killpg(engine_pid(record), signal.SIGKILL)  # the engine dies mid-session
            await wait_for(lambda: len(starts.read_text().splitlines()) == 2, timeout=30)
            await wait_for(lambda: current_pid(registry) not in (None, engine_pid(record))
                           and json.loads(registry.read_text()).get("state") == "ready", timeout=30)
            for client, u, p in ((first, uri, pos), (second, uri2, pos2)):
                assert await inline_eventually(client, u, p) == "ready_engine_answer"
        pid = current_pid(registry)
        assert pid and pid_alive(pid)  # the first server still uses it
    await wait_for(lambda: not pid_alive(pid), timeout=15)  # the last one out stopped it
    assert not registry.exists()


async def test_engine_outlives_its_supervisor_and_is_adopted_when_it_dies(tmp_path: Path) -> None:
    env = {"VLLM_COMPANION_CACHE": str(tmp_path / "cache"), "FAKE_ENGINE_ARGS": str(tmp_path / "starts.jsonl")}
    registry = tmp_path / "cache" / "run" / "engine.json"
    async with contextlib.AsyncExitStack() as outer:
        first_stack = contextlib.AsyncExitStack()
        first = await first_stack.enter_async_context(session(launch_options(), env=env))
        await wait_for(lambda: ready(first), timeout=30)  # first starts and supervises the engine
        second = await outer.enter_async_context(session(launch_options(), env=env))
        await wait_for(lambda: ready(second), timeout=30)
        supervisor = json.loads(registry.read_text())["supervisor"]
        await first_stack.aclose()  # the supervising server goes; the engine stays for the other editor
        record = json.loads(registry.read_text())
        assert pid_alive(engine_pid(record)) and not pid_alive(supervisor["pid"])
        uri, pos = open_doc(second, "z = █\n")
        assert await inline(second, uri, pos) == "ready_engine_answer"
        os.killpg(engine_pid(record), signal.SIGKILL)
        await wait_for(lambda: current_pid(registry) not in (None, engine_pid(record))
                       and json.loads(registry.read_text()).get("state") == "ready", timeout=30)
        assert json.loads(registry.read_text())["supervisor"] != supervisor  # adopted
        assert await inline_eventually(second, uri, pos) == "ready_engine_answer"
        pid = current_pid(registry)
    await wait_for(lambda: not pid_alive(pid), timeout=15)
