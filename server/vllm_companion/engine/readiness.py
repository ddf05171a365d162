"""Is the local engine ready: the one answer, for the supervisor watching its start and health and
for the manager attaching to an engine the registry records (issue 21, point 6).

Ready means it answers ``/health`` (vLLM; llama.cpp's Python server has none and answers 404, so
there its model list stands in) and lists at least one model on ``/v1/models``: vLLM answers
``/health`` while it still loads the weights, and its model list is what clients read first.
Whether an *attached* endpoint answers is another question, the health's (backend/health.py).
"""

from __future__ import annotations

import json

import httpx2 as httpx

from ..httpclient import http_client

PROBE_TIMEOUT_S = 2.0  # one probe of our own engine on loopback
MAX_LIST_BYTES = 1 << 20  # our engine lists one model (a fleet's router, a few)


def root_of(endpoint: str) -> str:
    """``http://host:port`` of ``http://host:port/v1`` (where ``/health`` is)."""
    endpoint = endpoint.rstrip("/")
    return endpoint[:-3] if endpoint.endswith("/v1") else endpoint


async def healthy(http: httpx.AsyncClient, endpoint: str) -> bool:
    """``/health`` where the engine has it; a listed model where it has not (404)."""
    try:
        status = (await http.get(f"{root_of(endpoint)}/health")).status_code
    except httpx.HTTPError:
        return False
    return status == 200 or (status == 404 and await models_listed(http, endpoint))


async def models_listed(http: httpx.AsyncClient, endpoint: str) -> bool:
    """At most ``MAX_LIST_BYTES`` read: a list beyond it is not our engine's (the whole body was
    read before its size was checked: 256 MiB, tests/adversarial/test_connection.py)."""
    try:
        async with http.stream("GET", f"{endpoint.rstrip('/')}/models") as resp:
            if resp.status_code != 200:
                return False
            body = bytearray()
            async for piece in resp.aiter_bytes():
                body += piece
                if len(body) > MAX_LIST_BYTES:
                    return False
        data = json.loads(body)
        return isinstance(data, dict) and bool(data.get("data"))
    except (httpx.HTTPError, ValueError, RecursionError):
        return False


async def serving(http: httpx.AsyncClient, endpoint: str) -> bool:
    """Healthy and listing its model: requests may go to it now."""
    return await healthy(http, endpoint) and await models_listed(http, endpoint)


async def engine_ready(endpoint: str, api_key: str | None) -> bool:
    """``serving`` on a client of its own (the manager's question about a recorded engine)."""
    async with http_client(PROBE_TIMEOUT_S, api_key) as http:
        return await serving(http, endpoint)
