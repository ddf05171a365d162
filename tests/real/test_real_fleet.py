"""A real fleet (issue 12, issue 19 point 10): two vLLM CPU replicas of SmolLM2-135M behind the
real vllm-router, all started by ``vllm-companion engine start --replicas 2`` (our supervisor).
Completions flow through the router; the replica serving this editor's session is killed
mid-session (SIGKILL of its API server, what the OOM killer does): all 8 next completions are
answered with text within the cap, the router is never restarted, the status never says the
endpoint is down and says one replica is; ``engine stop`` ends everything, found by session, group
and identity (tests/leftovers.py), not by command line.

About 7 GB of RAM and 2-3 minutes on 2 cores. Skipped without vLLM or the router unless
VLLM_COMPANION_REQUIRE_REAL=1 (CI)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.test_fleet import processes, status_texts, workers
from tests.leftovers import track, wait_gone
from tests.lsp_session import as_dict, inline, open_doc, session, wait_for
from tests.real.test_real_engine import _cli

# The completion cap: the killed replica's restart loads a model on the same 2 cores meanwhile.
CAP_MS = 10_000


@pytest.fixture()
def installed() -> None:
    missing = [m for m in ("vllm", "vllm_router") if importlib.util.find_spec(m) is None]
    if missing and os.environ.get("VLLM_COMPANION_REQUIRE_REAL") == "1":
        pytest.fail(f"{missing} not installed but VLLM_COMPANION_REQUIRE_REAL=1")
    if missing:
        pytest.skip(f"{missing} not installed")


def engine_pid(port: int) -> int:
    """The vLLM API server on ``port`` (not its guard): started by this test's fleet. Which process
    to kill is found by its argv; what is left at the end is found by identity (tests/leftovers.py)."""
    return next(pid for pid, cmd in processes(f"--port {port} ").items()
                if "vllm.entrypoints" in cmd and "engine.guard" not in cmd)


def router_pid(env: dict[str, str]) -> int:
    """The router (its guard) as the registry records it: a restart changes it."""
    return int(json.loads((Path(env["VLLM_COMPANION_CACHE"]) / "run" / "engine.json").read_text())["engine"]["pid"])


async def served(ports: list[int]) -> int:
    """The replica that answered this editor (vLLM's own counter of finished requests, on its
    /metrics, open without the key): the session's consistent hash keeps it there."""
    counts = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for port in ports:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            counts[port] = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                               if line.startswith("vllm:request_success_total"))
    return max(ports, key=lambda p: counts[p])


async def test_two_real_replicas_behind_the_real_router(installed: None, tmp_path: Path) -> None:
    cache = os.environ.get("VLLM_COMPANION_TEST_CACHE")
    env = {"VLLM_COMPANION_CACHE": str(Path(cache) / "fleet") if cache else str(tmp_path / "cache")}
    started = _cli("engine", "start", "--replicas", "2", "--device=cpu", env=env, timeout=900)
    tracked = None
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        tracked = track(Path(env["VLLM_COMPANION_CACHE"]) / "run", env=env)  # router, replicas, guards, workers
        endpoint = started.stdout.strip().splitlines()[-1]
        assert len(await workers(endpoint)) == 2
        await _complete_through_a_dying_replica(env, endpoint)
    finally:
        _cli("engine", "stop", env=env, timeout=60)
    if tracked is not None:
        await asyncio.to_thread(wait_gone, tracked, 60)


async def _complete_through_a_dying_replica(env: dict[str, str], endpoint: str) -> None:
    opts = {"backend": {"launch": True}, "engine": {"device": "cpu"},
            "completion": {"debounceMs": 0, "timeoutMs": CAP_MS}}
    async with session(opts, env=env) as client:
        await wait_for(lambda: any(as_dict(s).get("state") == "ready" and as_dict(s).get("model")
                                   for s in client.statuses), timeout=60)
        uri, pos = open_doc(client, "def circle_area(radius):\n    return █\n")
        assert "radius" in (await asyncio.wait_for(inline(client, uri, pos), 60) or "")
        ports = [int(u.rsplit(":", 1)[1]) for u in await workers(endpoint)]
        router = router_pid(env)
        os.kill(engine_pid(await served(ports)), signal.SIGKILL)  # this editor's replica dies
        since, answers, took = len(client.statuses), [], []
        for i in range(8):
            began = time.monotonic()
            uri, pos = open_doc(client, f"def area_{i}(width, height):\n    return █\n")
            answers.append(await inline(client, uri, pos))
            took.append(round(time.monotonic() - began, 2))
        print(json.dumps({"answers": answers, "seconds": took}))
        # The live replica answers every one: none fails (the statuses below), each within the cap.
        # The real model's text may still be cleaned to nothing by the stages (a clean-clone CI run
        # on 2026-12-06 saw one of eight answered with 11 chunks and emptied by the scope stage),
        # so one empty suggestion is the model's, not the fleet's.
        assert sum(1 for a in answers if a) >= len(answers) - 1, answers
        assert max(took) < CAP_MS / 1000 + 1.0, took  # each within the cap
        down = [s for s in client.statuses[since:] if as_dict(s).get("state") in ("unavailable", "error")]
        assert not down, down
        assert router_pid(env) == router  # the router was never restarted
        await wait_for(lambda: any("1 of 2 local replicas ready" in t for t in status_texts(client)), timeout=20)
