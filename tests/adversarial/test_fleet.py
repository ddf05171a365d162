"""Attacks on a fleet (issue 19, point 10 and the fleet watcher): replicas behind the real
``vllm-router`` 0.1.17 binary, started by our supervisor (``engine start --replicas 2``), the
replicas being the fake engine executable (tests/fake_engine.py), the editor a real language
server over stdio.

- A replica SIGKILLed mid-session and not back for a while (its restart hangs): every completion
  of the editor whose session hashed to it is still answered with text within the cap, the router
  is not restarted, and the status never says the endpoint is down.
- The router's own error answers (a worker it cannot reach) are one request's failure, not the
  endpoint's: the real router with retries off, in front of one dead and one live worker.
- One of our workers removed through the router's unauthenticated admin route is noticed and put
  back.
- Whatever answers on the router's port (a nested, a dripping or a huge worker list) neither
  stalls the event loop nor ends the watch, and a list too long to be ours stops the fleet.
- The taxonomy: a router's or gateway's word about one worker is request-local; "no worker at
  all" is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2 as httpx

from tests.e2e.test_fleet import fleet_env, processes, record, replica_pid, router_installed, workers
from tests.e2e.test_team import cli
from tests.fake_backend import FakeBackend, Reply, dead_port
from tests.lsp_session import as_dict, inline, open_doc, options, session, wait_for
from vllm_companion.backend.availability import ENDPOINT_KINDS
from vllm_companion.backend.errors import ErrorKind, classify, status_error

__all__ = ["router_installed"]  # the fixture (autouse): skips where vllm-router is missing
CAP_MS = 3000
DOWN = ("unavailable", "error", "starting")


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path, script: list[str]) -> AsyncIterator[tuple[dict[str, str], str]]:
    env = fleet_env(tmp_path, script)
    os.environ.update({k: v for k, v in env.items() if k.startswith("FAKE_")})
    try:
        started = cli(tmp_path, "engine", "start", "--replicas", "2", "--device", "cpu", "--model", "fake-model")
        assert started.returncode == 0, started.stderr
        yield env, started.stdout.strip()
    finally:
        cli(tmp_path, "engine", "stop")
        for key in env:
            if key.startswith("FAKE_"):
                os.environ.pop(key, None)
    await wait_for(lambda: not processes(str(tmp_path)), timeout=30)


async def typed(client: Any, i: int) -> str | None:
    uri, pos = open_doc(client, f"x{i} = █\n")
    return await inline(client, uri, pos)


def states(client: Any, since: int = 0) -> list[tuple[str, str]]:
    return [(str(as_dict(s).get("state")), str(as_dict(s).get("message", ""))) for s in client.statuses[since:]]


async def test_a_dead_replica_costs_no_completion_and_never_reads_as_a_dead_endpoint(tmp_path: Path) -> None:
    """The replica holding this editor's session dies (SIGKILL, by PID) and stays down 25 s (its
    restart hangs): the router retries the request on the live replica, our supervisor leaves the
    router alone although its /health says 503 while a worker is down, and the language server
    never shows the endpoint down. Before: the router was restarted after 15 s (its connections
    refused: "cannot reach the engine"), and the status said so."""
    async with fleet(tmp_path, ["ok", "ok", "hang"]) as (env, _endpoint):
        opts = {"backend": {"launch": True}, "engine": {"device": "cpu", "model": "fake-model"},
                "completion": {"debounceMs": 0, "timeoutMs": CAP_MS}}
        async with session(opts, env=env) as client:
            await wait_for(lambda: any(s == "ready" for s, _ in states(client)), timeout=30)
            first = await typed(client, 0)
            assert first is not None and first.startswith("answer_from_")
            router = record(tmp_path)["engine"]["pid"]
            os.kill(replica_pid(int(first.removeprefix("answer_from_"))), signal.SIGKILL)
            since, answers = len(client.statuses), []
            for i in range(8):
                began = time.monotonic()
                answers.append(await typed(client, 1 + i))
                assert time.monotonic() - began < CAP_MS / 1000 + 0.5, answers  # within the cap
                await asyncio.sleep(3.0)  # 24 s in all: past the router supervisor's 3 x 5 s health checks
            assert all(a and a.startswith("answer_from_") and a != first for a in answers), answers
            assert not [s for s in states(client, since) if s[0] in DOWN], states(client, since)
            assert record(tmp_path)["engine"]["pid"] == router  # the router was never restarted
            assert any("1 of 2 local replicas ready" in m for _, m in states(client, since))


@contextlib.asynccontextmanager
async def bare_router(worker_urls: list[str], *extra: str) -> AsyncIterator[str]:
    """The real router binary, no retries, in front of ``worker_urls`` (a dead one among them)."""
    port, metrics = dead_port(), dead_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vllm_router.launch_router", "--host", "127.0.0.1", "--port", str(port),
        "--worker-urls", *worker_urls, "--policy", "consistent_hash", "--prometheus-host", "127.0.0.1",
        "--prometheus-port", str(metrics), "--log-level", "warning", "--worker-startup-timeout-secs", "20",
        "--disable-retries", "--health-check-interval-secs", "60", *extra,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/liveness")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_a_router_error_about_one_worker_does_not_mark_the_endpoint_down() -> None:
    """The router's own answer when the worker a session hashes to has died (500 "Request failed:
    error sending request for url (...)"; retries off and health checks slow here, so the language
    server sees it) is that request's failure, not the endpoint's: the status never leaves ready,
    and the next requests (that worker's breaker now open) are served by the live one."""
    one, two = await FakeBackend().start(), await FakeBackend().start()
    one.default, two.default = Reply(chunks=["from_one"]), Reply(chunks=["from_two"])
    try:
        async with bare_router([one.url.removesuffix("/v1"), two.url.removesuffix("/v1")],
                               "--cb-failure-threshold", "1") as endpoint:
            opts = options(endpoint, timeoutMs=CAP_MS)
            opts["backend"]["headers"] = {"X-Session-ID": "editor-1"}
            async with session(opts) as client:
                served = await typed(client, 0)
                assert served in ("from_one", "from_two")
                await (one if served == "from_one" else two).stop()  # its port now refuses connections
                answers = [await typed(client, 1 + i) for i in range(8)]
                await asyncio.sleep(0.3)  # a status the failure would send
                assert sum(a not in (None, served) for a in answers) >= 7 and answers[-1] != served, answers
                assert not [s for s in states(client) if s[0] in DOWN[:2]], states(client)
    finally:
        await one.stop()
        await two.stop()


async def test_a_worker_removed_through_the_admin_route_is_put_back(tmp_path: Path) -> None:
    """vllm-router's /remove_worker answers anyone on this machine: one of our replicas taken out
    of the list would halve the fleet for good (the router never re-adds it). The watcher notices
    within its 2 s period and adds it back; the fleet keeps running."""
    async with fleet(tmp_path, ["ok"]) as (_env, endpoint):
        ours = await workers(endpoint)
        root = endpoint.removesuffix("/v1")
        async with httpx.AsyncClient(timeout=10) as http:
            removed = await http.post(f"{root}/remove_worker", params={"url": ours[0]})
            assert removed.status_code == 200, removed.text  # the router's own behaviour: no key asked
            assert await workers(endpoint) == ours[1:]
            began = time.monotonic()
            while sorted(await workers(endpoint)) != sorted(ours):
                assert time.monotonic() - began < 10, await workers(endpoint)
                await asyncio.sleep(0.2)
        assert record(tmp_path).get("state") == "ready"
        log = (tmp_path / "cache" / "run" / "engine-service.log").read_text()
        assert "put back" in log


def test_a_gateway_or_router_failure_is_one_requests_not_the_endpoints() -> None:
    """The bodies measured on vllm-router 0.1.17, a gateway's 502/504 and an answer cut off
    mid-stream are request-local; "no worker at all" and a refused connection stay the endpoint's."""
    worker = status_error(500, "Request failed: error sending request for url (http://127.0.0.1:9/v1/completions)")
    cut = classify(httpx.RemoteProtocolError("peer closed connection without sending complete message body "
                                             "(incomplete chunked read)"))
    for error in (worker, status_error(502, "<html>Bad Gateway</html>"), status_error(504, ""), cut):
        assert error.kind is ErrorKind.UPSTREAM and error.kind.request_local and error.kind not in ENDPOINT_KINDS
    nobody = status_error(503, "No available workers (all circuits open or unhealthy)")
    assert nobody.kind is ErrorKind.OVERLOADED and not nobody.kind.request_local
    assert status_error(500, '{"error": {"message": "EngineCore died"}}').kind is ErrorKind.SERVER
    assert classify(httpx.ConnectError("refused")).kind is ErrorKind.UNAVAILABLE


async def test_a_router_answering_a_nested_dripping_or_huge_worker_list_neither_stalls_nor_ends_the_watch(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The watcher reads ``/list_workers`` from whatever answers on the router's port: JSON nested
    100,000 deep, an answer dripped a byte at a time, then 32 MB listing only our worker. The watch
    goes on through the first two (each call bounded in time) and stops the fleet on the third
    (a list that long is not ours: read no further than 1 MiB); the event loop never stalls.
    Before: the nested answer's RecursionError ended the watch for good (no stranger was ever seen
    again), a dripped answer held it forever, and a huge one was parsed on the event loop."""
    from vllm_companion.engine import fleet as fleet_module
    from vllm_companion.engine import router as router_module
    from vllm_companion.engine.fleet import Fleet, FleetPlan
    from vllm_companion.engine.planning.plan import plan_launch
    from vllm_companion.engine.supervised import EngineState, Policy

    ours = "http://127.0.0.1:9"
    answers = [b'{"urls": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "drip",
               json.dumps({"urls": [ours] * 1_000_000}).encode()]
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            body = answers[min(len(served), len(answers) - 1)]
            served.append(len(served))
            if body == "drip":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                for _ in range(2000):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.02)
            else:
                assert isinstance(body, bytes)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        writer.close()

    monkeypatch.setattr(fleet_module, "WATCH_S", 0.2)
    monkeypatch.setattr(router_module, "CALL_S", 0.2)
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    events: list[Any] = []
    plan = FleetPlan((), (), (ours,), plan_launch([]))
    fleet = Fleet(plan, lambda *a: None, lambda w: None, tmp_path, events.append, Policy(), [])  # type: ignore[arg-type,return-value]
    fleet.workers = [ours]
    fleet.router.state, fleet.router.port = EngineState.READY, server.sockets[0].getsockname()[1]
    stalls: list[float] = []

    async def ticker() -> None:
        while True:
            began = time.monotonic()
            await asyncio.sleep(0.01)
            stalls.append(time.monotonic() - began)

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.wait_for(fleet.watch_workers(), 20)
    finally:
        ticking.cancel()
        server.close()
    assert len(served) >= 3
    assert [e for e in events if e.state is EngineState.FAILED and "over 1 MiB" in e.message], events
    assert max(stalls) < 0.3, max(stalls)
