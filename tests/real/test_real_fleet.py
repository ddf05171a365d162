"""A real fleet (issue 12): two vLLM CPU replicas of SmolLM2-135M behind the real vllm-router,
all started by ``vllm-companion engine start --replicas 2`` (our supervisor). Completions flow
through the router; a replica stopped mid-session costs no hang (each answer within the cap) and
the status says one replica is down; ``engine stop`` ends everything.

About 7 GB of RAM and 1-2 minutes on 2 cores. Skipped without vLLM or the router unless
VLLM_COMPANION_REQUIRE_REAL=1 (CI)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.test_fleet import processes, status_texts, workers
from tests.lsp_session import as_dict, inline, open_doc, session, wait_for
from tests.real.test_real_engine import _cli


@pytest.fixture()
def installed() -> None:
    missing = [m for m in ("vllm", "vllm_router") if importlib.util.find_spec(m) is None]
    if missing and os.environ.get("VLLM_COMPANION_REQUIRE_REAL") == "1":
        pytest.fail(f"{missing} not installed but VLLM_COMPANION_REQUIRE_REAL=1")
    if missing:
        pytest.skip(f"{missing} not installed")


def engine_pid(port: int) -> int:
    """The vLLM API server on ``port`` (not its guard): started by this test's fleet."""
    return next(pid for pid, cmd in processes(f"--port {port} ").items()
                if "vllm.entrypoints" in cmd and "engine.guard" not in cmd)


async def test_two_real_replicas_behind_the_real_router(installed: None, tmp_path: Path) -> None:
    cache = os.environ.get("VLLM_COMPANION_TEST_CACHE")
    env = {"VLLM_COMPANION_CACHE": str(Path(cache) / "fleet") if cache else str(tmp_path / "cache")}
    started = _cli("engine", "start", "--replicas", "2", "--device=cpu", env=env, timeout=900)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        endpoint = started.stdout.strip().splitlines()[-1]
        assert len(await workers(endpoint)) == 2
        await _complete_through_a_dying_replica(env, endpoint)
    finally:
        _cli("engine", "stop", env=env, timeout=60)
    await wait_for(lambda: not processes(env["VLLM_COMPANION_CACHE"]), timeout=60)  # guards, replicas, router


async def _complete_through_a_dying_replica(env: dict[str, str], endpoint: str) -> None:
    opts = {"backend": {"launch": True}, "engine": {"device": "cpu"}, "completion": {"debounceMs": 0}}
    async with session(opts, env=env) as client:
        await wait_for(lambda: any(as_dict(s).get("state") == "ready" and as_dict(s).get("model")
                                   for s in client.statuses), timeout=60)
        uri, pos = open_doc(client, "def circle_area(radius):\n    return █\n")
        assert "radius" in (await asyncio.wait_for(inline(client, uri, pos), 60) or "")
        ports = [int(u.rsplit(":", 1)[1]) for u in await workers(endpoint)]
        os.kill(engine_pid(ports[0]), signal.SIGKILL)  # one replica dies mid-session
        answers = []
        for i in range(8):
            began = time.monotonic()
            uri, pos = open_doc(client, f"def area_{i}(width, height):\n    return █\n")
            answers.append(await inline(client, uri, pos))
            assert time.monotonic() - began < 7.0  # the completion cap (5 s) plus slack: never a hang
        assert sum(bool(a) for a in answers) >= 6, answers  # the live replica keeps serving
        await wait_for(lambda: any("1 of 2 local replicas ready" in t for t in status_texts(client)), timeout=20)
        print(json.dumps({"answers": answers}))
