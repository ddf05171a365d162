"""The fleet router's health check (issue 19, point 10; issue 21): vllm-router answers ``/health``
503 while any worker is unhealthy, so its supervisor must read ``/liveness`` instead
(``RouterSupervisor._healthy``, engine/router.py). A change to the supervisor's readiness once
skipped that override, and nothing failed: the fleet e2e test restarts the replica within the
15 s the supervisor waits before calling the router unhealthy.

Here the router is a stand-in process on a real socket, run by the real supervisors with a fast
policy: ``/health`` turns 503 (a worker died) and later ``/liveness`` stops answering (the router
itself hangs). A plain ``ProcessSupervisor`` over the same process restarts it on the 503: the
stand-in reproduces what made the override necessary, so the first test fails if the override is
bypassed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vllm_companion.engine.command import EngineCommand
from vllm_companion.engine.planning.plan import LaunchPlan, plan_launch
from vllm_companion.engine.router import RouterSupervisor
from vllm_companion.engine.supervised import EngineEvent, EngineState, Policy
from vllm_companion.engine.supervisor import ProcessSupervisor

FAST = Policy(stall_timeout_s=10, poll_s=0.05, health_interval_s=0.1, health_failures=2,
              backoff_s=(0.1,), crash_loop=(50, 60.0), stop_grace_s=3)
CHECKS_S = 1.5  # 15 health intervals: 7 times the failures that call an engine unhealthy

# /health: 200, or 503 once the file "sick" exists (a worker died); /liveness: 200, or 500 once
# "dead" exists; /v1/models lists one model (what readiness reads).
ROUTER = r"""
import http.server, json, pathlib, sys
flags = pathlib.Path(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = 404, b"{}"
        if self.path == "/health":
            status = 503 if (flags / "sick").exists() else 200
        elif self.path == "/liveness":
            status = 500 if (flags / "dead").exists() else 200
        elif self.path == "/v1/models":
            status, body = 200, json.dumps({"data": [{"id": "m"}]}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@pytest.fixture
async def made() -> AsyncIterator[list[ProcessSupervisor]]:
    """Every supervisor a test makes is stopped at teardown, pass or fail."""
    sups: list[ProcessSupervisor] = []
    yield sups
    for sup in sups:
        await sup.stop()


def supervise(kind: type[ProcessSupervisor], tmp_path: Path, events: list[EngineEvent]) -> ProcessSupervisor:
    def build(_plan: LaunchPlan, port: int) -> EngineCommand:
        return EngineCommand([sys.executable, "-c", ROUTER, str(port), str(tmp_path)], {})

    return kind(plan_launch([]), build, tmp_path / "logs", events.append, FAST, [])


def restarted(events: list[EngineEvent]) -> bool:
    return any(e.state in (EngineState.UNHEALTHY, EngineState.RESTARTING) for e in events)


async def test_the_router_stays_up_while_its_health_reports_a_dead_worker_and_restarts_when_not_live(
        tmp_path: Path, made: list[ProcessSupervisor]) -> None:
    events: list[EngineEvent] = []
    router = supervise(RouterSupervisor, tmp_path, events)
    made.append(router)
    await router.start()
    assert await router.wait_ready(20), [e.message for e in events]
    pid = router.pid
    (tmp_path / "sick").touch()  # /health 503: a worker's business, not the router's
    await asyncio.sleep(CHECKS_S)
    assert not restarted(events) and router.state is EngineState.READY, [e.message for e in events]
    assert router.pid == pid and router.restarts == 0
    (tmp_path / "dead").touch()  # /liveness fails: the router itself is unwell, and is restarted
    for _ in range(100):
        if restarted(events):
            break
        await asyncio.sleep(0.05)
    assert restarted(events), [e.message for e in events]


async def test_a_plain_supervisor_restarts_the_same_router_on_its_health(
        tmp_path: Path, made: list[ProcessSupervisor]) -> None:
    """The control: without ``RouterSupervisor``'s override, the 503 restarts the router (what
    happened under every editor's connections before, issue 19 point 10)."""
    events: list[EngineEvent] = []
    plain = supervise(ProcessSupervisor, tmp_path, events)
    made.append(plain)
    await plain.start()
    assert await plain.wait_ready(20), [e.message for e in events]
    (tmp_path / "sick").touch()
    await asyncio.sleep(CHECKS_S)
    assert restarted(events), [e.message for e in events]


def test_a_fleet_supervises_its_router_on_liveness(tmp_path: Path) -> None:
    """The override is only worth what uses it: the fleet's router is a ``RouterSupervisor``."""
    from vllm_companion.engine.fleet import Fleet, FleetPlan

    plan = FleetPlan((), (), ("http://127.0.0.1:9",), plan_launch([]))
    fleet = Fleet(plan, lambda *a: EngineCommand([], {}), lambda w: EngineCommand([], {}), tmp_path,
                  lambda e: None, FAST, [])
    assert type(fleet.router) is RouterSupervisor
