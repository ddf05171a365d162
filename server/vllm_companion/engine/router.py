"""vLLM's router (PyPI ``vllm-router``) as a fleet runs it: its command line, its supervision and
its admin calls (engine/fleet.py runs the replicas and the watch over the router's worker list).

Measured on vllm-router 0.1.17 (issue 19, point 10; tests/adversarial/test_fleet.py):

- a request to a worker whose port refuses connections is retried, but under ``consistent_hash``
  on the *same* worker until its circuit breaker opens (defaults: 5 tries, breaker at 10
  failures: the first two requests of a session failed). So the breaker opens on the first
  failure and a request gets 3 tries: the second goes to a live replica (about 25 ms);
- its ``/health`` answers 503 while any worker is unhealthy: read as the router's own health, our
  supervisor restarted the router 15 s after a replica died and every editor lost its
  connections ("cannot reach the engine"). The router's supervision reads ``/liveness``
  (``RouterSupervisor``; tests/e2e/test_router_health.py);
- ``/remove_worker`` answers anyone on this machine too, and the router never puts a removed
  worker back: the fleet's watch re-adds ours (the router is ours, on loopback), so nobody can
  halve the fleet for good;
- it does not check clients' keys itself (``--api-key`` is not an access check): it forwards
  ``Authorization``, and the replicas check the fleet's key;
- its admin routes (``POST /add_worker``) answer anyone who reaches its port: so it listens on
  loopback only, and each admin call here is bounded in time and bytes (``_call``), its answer
  parsed off the event loop, whatever answers on that port.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx2 as httpx

from .command import EngineCommand
from .planning.plan import LaunchPlan
from .supervised import free_port
from .supervisor import ProcessSupervisor

ROUTER_MODULE = "vllm_router.launch_router"
ROUTER_POLICY = "consistent_hash"
CALL_S = 2.0  # one admin call in all, a dripped answer included
MAX_WORKERS = 256  # entries of the router's list read
MAX_LIST_BYTES = 1 << 20  # of an admin answer read: our list is a few hundred bytes
TOO_LONG = f"(a worker list over {MAX_LIST_BYTES >> 20} MiB)"


def router_command(router: LaunchPlan, workers: list[str], api_key: str, python: str = sys.executable
                   ) -> EngineCommand:
    """vllm-router on loopback on ``router.port`` over ``workers``; health checked every 2 s, a
    worker out of the ring after one failed check or one failed request (its breaker), and a
    request tried up to 3 times with 20-200 ms back-off: the retry after a dead worker goes to a
    live one (module doc), so a dead replica costs no request. A breaker opened by one 5xx of a
    live replica lets a trial request through after 5 s."""
    argv = [python, "-m", ROUTER_MODULE, "--host", "127.0.0.1", "--port", str(router.port),
            "--worker-urls", *workers, "--policy", ROUTER_POLICY,
            "--health-check-interval-secs", "2", "--health-failure-threshold", "1",
            "--health-success-threshold", "1", "--health-check-timeout-secs", "2",
            "--retry-max-retries", "3", "--retry-initial-backoff-ms", "20", "--retry-max-backoff-ms", "200",
            "--cb-failure-threshold", "1", "--cb-success-threshold", "1", "--cb-timeout-duration-secs", "5",
            "--worker-startup-timeout-secs", "120", "--request-timeout-secs", "600",
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()),
            "--log-level", "warning"]  # info logs three lines per request
    return EngineCommand(argv, {"NO_COLOR": "1"}, api_key)  # the key: our probes send it, the router forwards it


class RouterSupervisor(ProcessSupervisor):
    """The router as a supervised process. Alive means its own ``/liveness`` answers: its
    ``/health`` is 503 while any worker is unhealthy (vllm-router 0.1.17, measured), which is the
    replicas' business (each has its supervisor), not a reason to restart the router under every
    editor's connections (issue 19, point 10)."""

    async def _healthy(self, http: httpx.AsyncClient) -> bool:
        try:
            return (await http.get(f"http://127.0.0.1:{self.port}/liveness")).status_code == 200
        except httpx.HTTPError:
            return False


async def list_workers(http: httpx.AsyncClient, port: int | None) -> set[str] | None:
    """The router's worker list (None: no answer this round). A list over ``MAX_LIST_BYTES``
    (ours is a few hundred bytes) can only come from its admin route: it reads as a stranger
    (``TOO_LONG``)."""
    answer = await _call(http, "GET", f"http://127.0.0.1:{port}/list_workers")
    if answer is None or answer[0] != 200:
        return None
    return {TOO_LONG} if answer[1] is None else await asyncio.to_thread(_urls, answer[1])


async def add_worker(http: httpx.AsyncClient, port: int | None, url: str) -> tuple[int, bytes | None] | None:
    """``POST /add_worker``: its status and (bounded) answer, None when it did not answer in time."""
    return await _call(http, "POST", f"http://127.0.0.1:{port}/add_worker", params={"url": url})


async def _call(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> tuple[int, bytes | None] | None:
    """One call to the router's admin API: ``CALL_S`` in all (one that drips its answer too),
    at most ``MAX_LIST_BYTES`` read (None in place of a longer body). None: no answer in time."""
    try:
        async with asyncio.timeout(CALL_S), http.stream(method, url, **kwargs) as resp:
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_LIST_BYTES:
                    return resp.status_code, None
            return resp.status_code, bytes(body)
    except (httpx.HTTPError, TimeoutError):
        return None


def _urls(body: bytes) -> set[str] | None:
    """The URLs of a ``/list_workers`` answer, trailing slashes aside (the router keeps URLs as
    given: measured, vllm-router 0.1.17); None for anything else (off the loop: any JSON parse)."""
    try:
        urls = json.loads(body).get("urls", [])
        return {str(u).rstrip("/") for u in urls[:MAX_WORKERS]} if isinstance(urls, list) else None
    except (ValueError, RecursionError, AttributeError, TypeError):
        return None
