"""A fleet (issue 12): replicas behind vLLM's own router (the real ``vllm-router`` binary), all
started and watched by our supervisor; the engines are the fake executable (fast), the real CPU
vLLM pair is in tests/real/test_real_fleet.py. A replica killed mid-session: every completion is
answered within the cap (the router retries on the live one) and the status says so; the router
killed: restarted on its port; ``engine stop``: everything goes."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.test_shared_engine import FAKE, pid_alive, ready
from tests.e2e.test_team import cli
from tests.lsp_session import as_dict, inline, open_doc, session, wait_for


@pytest.fixture(autouse=True)
def router_installed() -> None:
    if importlib.util.find_spec("vllm_router") is None:
        if os.environ.get("VLLM_COMPANION_REQUIRE_REAL") == "1":
            pytest.fail("vllm-router is not installed but VLLM_COMPANION_REQUIRE_REAL=1")
        pytest.skip("vllm-router not installed (pip install 'vllm-companion[fleet]')")


def fleet_env(tmp_path: Path, script: list[str]) -> dict[str, str]:
    (tmp_path / "script.json").write_text(json.dumps(script))
    return {"VLLM_COMPANION_CACHE": str(tmp_path / "cache"), "FAKE_ENGINE_SAY_PORT": "1",
            "FAKE_ENGINE_BODIES": str(tmp_path / "bodies.jsonl"),
            "FAKE_ENGINE_SCRIPT": str(tmp_path / "script.json"), "VLLM_COMPANION_ENGINE_COMMAND": json.dumps(FAKE)}


def record(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "cache" / "run" / "engine.json"
    return json.loads(path.read_text()) if path.exists() else {}


def processes(word: str) -> dict[int, str]:
    """Our fake engines and routers (their command lines name this test's cache or ports)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if word in cmd:
                found[int(entry.name)] = cmd
    return found


def replica_pid(port: int) -> int:
    """The fake engine (not its guard) serving ``port``: started by this test's fleet."""
    return next(pid for pid, cmd in processes(f"--port {port} ").items()
                if "fake_engine.py" in cmd and "engine.guard" not in cmd)


def status_texts(client: Any) -> list[str]:
    return [str(as_dict(s).get("message", "")) for s in client.statuses]


async def workers(endpoint: str) -> list[str]:
    async with httpx.AsyncClient() as http:
        return list((await http.get(endpoint.removesuffix("/v1") + "/list_workers")).json()["urls"])


async def test_a_fleet_serves_survives_a_dead_replica_and_router_and_stops(tmp_path: Path) -> None:
    env = fleet_env(tmp_path, ["ok", "ok", "late"])  # a replica's restart takes 6 s: the status can see it
    os.environ.update({k: v for k, v in env.items() if k.startswith("FAKE_")})
    try:
        started = cli(tmp_path, "engine", "start", "--replicas", "2", "--device", "cpu", "--model", "fake-model")
        assert started.returncode == 0, started.stderr
        await _serve_and_survive(tmp_path, env, started.stdout.strip())
        bodies = [json.loads(x) for x in (tmp_path / "bodies.jsonl").read_text().splitlines()]
        assert bodies and all(b.get("priority") == 0 for b in bodies)  # through the router, priority intact
    finally:
        cli(tmp_path, "engine", "stop")
        for key in env:
            if key.startswith("FAKE_"):
                os.environ.pop(key, None)
    await wait_for(lambda: not processes(str(tmp_path)), timeout=15)  # guards, engines, router: all gone


async def _serve_and_survive(tmp_path: Path, env: dict[str, str], endpoint: str) -> None:
    urls = await workers(endpoint)
    assert len(urls) == 2 and record(tmp_path)["fleet"] == "2 of 2 local replicas ready"
    opts = {"backend": {"launch": True}, "engine": {"device": "cpu", "model": "fake-model"},
            "completion": {"debounceMs": 0, "timeoutMs": 3000}}
    async with session(opts, env=env) as client:
        await wait_for(lambda: ready(client), timeout=30)
        uri, pos = open_doc(client, "x = █\n")
        first = await inline(client, uri, pos)
        assert first.startswith("answer_from_")
        assert {await typed(client, i) for i in range(5)} == {first}  # one session, one replica
        served = int(first.removeprefix("answer_from_"))
        os.kill(replica_pid(served), signal.SIGKILL)  # the replica holding this editor's prefix dies
        answers = []
        for i in range(12):
            began = time.monotonic()
            answers.append(await typed(client, 10 + i))
            assert time.monotonic() - began < 4.0  # within the completion cap, never hangs
            await asyncio.sleep(0.25)
        assert all(a and a.startswith("answer_from_") for a in answers), answers  # every one answered (issue 19)
        assert answers[0] != first  # the router's retry moved the first one to the live replica
        await wait_for(lambda: any("1 of 2 local replicas ready" in t for t in status_texts(client)), timeout=10)
        await wait_for(lambda: record(tmp_path).get("fleet") == "2 of 2 local replicas ready", timeout=30)

        router = record(tmp_path)["engine"]["pid"]
        os.killpg(router, signal.SIGKILL)  # the router (and its guard) die
        await wait_for(lambda: (record(tmp_path).get("engine") or {}).get("pid") not in (None, router)
                       and record(tmp_path).get("state") == "ready", timeout=30)
        assert not pid_alive(router) and record(tmp_path)["endpoint"] == endpoint  # same port again
        assert (await typed(client, 99)).startswith("answer_from_")


async def typed(client: Any, i: int) -> str | None:
    """A completion for a new prompt (the server's cache would answer a repeated one)."""
    uri, pos = open_doc(client, f"x{i} = █\n")
    return await inline(client, uri, pos)


def test_a_fleet_beyond_loopback_needs_a_key(tmp_path: Path) -> None:
    """With one, the router stays on loopback and only the front faces the network
    (tests/adversarial/test_team.py attacks its routes)."""
    refused = cli(tmp_path, "engine", "start", "--replicas", "2", "--host", "0.0.0.0")
    assert refused.returncode == 2 and "without an API key" in refused.stderr


async def test_a_worker_we_did_not_start_stops_the_fleet(tmp_path: Path) -> None:
    """vllm-router's /add_worker answers anyone on the machine: a stranger's worker in the list
    means code could go where nobody meant it to. The fleet fails closed, everything stops."""
    from tests.fake_backend import FakeBackend

    stranger = await FakeBackend().start()
    try:
        started = cli(tmp_path, "engine", "start", "--replicas", "2", "--device", "cpu", "--model", "fake-model")
        assert started.returncode == 0, started.stderr
        root = started.stdout.strip().removesuffix("/v1")
        async with httpx.AsyncClient(timeout=30) as http:
            added = await http.post(f"{root}/add_worker", params={"url": stranger.url.removesuffix("/v1")})
        assert added.status_code == 200, added.text  # the router's own behaviour: no key asked
        await wait_for(lambda: not processes(str(tmp_path)), timeout=30)  # router, replicas, service: gone
        log = (tmp_path / "cache" / "run" / "engine-service.log").read_text()
        assert "a worker we did not start" in log
    finally:
        cli(tmp_path, "engine", "stop")
        await stranger.stop()
