"""Which endpoint the server talks to and how: one ``Connection``.

The connection (endpoint, key, headers, model, context length, priority, timeouts) is owned by the
app (``Services.connection``, app.py) and decided by one of two sources: the user's settings in
attach mode (``Connection.attach``), the engine binding in launch mode (``Connection.launched``:
the engine's endpoint, served name and key; the user's headers and limits; ``beside``: the
next-edit process a launched plan runs beside it, engine/paired.py). Settings never carry
the launched engine's endpoint, so a settings change that leaves the connection as it was keeps the
backend, the completion cache and the served model's checks (issue 21, point 1).

Its HTTP client (``client``: key, headers, session id, timeouts) comes from the one factory,
httpclient.py, as the local engine's probes do, and is shared through ``LeasedClient``: a route
change (a model picked, the engine back on another port) retires the old client, which stays
open while a stream holds a lease on it and closes when the last lease ends, so a chat answering
on the old route finishes there (tests/e2e/test_route_change.py). Where the old endpoint is gone
for good the stream ends as any other failure does (errors.py), within its own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx2 as httpx  # openai >= 3's transport

from ..config import BackendSettings
from ..httpclient import http_client
from ..loopback import is_loopback
from .errors import BackendError, ErrorKind

# One random id per language server, on every request: a fleet's router (engine/fleet.py,
# consistent_hash) sends one editor's prompts, which share their prefix, to the same replica.
SESSION_HEADER = "X-Session-ID"
SESSION_ID = secrets.token_hex(8)


@dataclass(frozen=True)
class Connection:
    endpoint: str
    model: str | None = None  # None: the endpoint's first listed model
    api_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    context_length: int = 2048  # assumed where the endpoint does not list max_model_len
    priority: bool = False  # send vLLM request priorities (the engine must be started for them)
    connect_timeout_s: float = 3.0
    first_token_timeout_s: float = 10.0
    total_timeout_s: float = 60.0
    # Launch mode before the engine has an endpoint: nothing may be sent (health.py ``refusal``);
    # the settings' endpoint (by default 127.0.0.1:8000, whatever listens there) is not ours.
    engine_pending: bool = False

    @classmethod
    def attach(cls, settings: BackendSettings) -> Connection:
        """Attach mode: the user's settings say everything (in launch mode: until the engine's
        endpoint arrives, a connection that must not be used, ``engine_pending``)."""
        return cls(
            settings.endpoint.rstrip("/"), settings.model, settings.api_key, tuple(sorted(settings.headers.items())),
            settings.context_length, bool(settings.priority), settings.connect_timeout_s,
            settings.first_token_timeout_s, settings.total_timeout_s, settings.launch,
        )

    def launched(self, engine: tuple[str, str, str | None, bool] | None) -> Connection:
        """Launch mode: the engine (``EngineBinding.serving``: endpoint, model, key, priorities)
        decides those four; the user's limits stay. The user's ``backend.headers`` do not: they
        are meant for the endpoint the user configured (a gateway's tokens), not for our own
        engine. ``None``: no engine yet."""
        if engine is None:
            return self
        endpoint, model, api_key, priority = engine
        return replace(self, endpoint=endpoint.rstrip("/"), model=model, api_key=api_key, priority=priority,
                       headers=(), engine_pending=False)

    def beside(self, next_edit: tuple[str, str] | None) -> Connection | None:
        """The launched next-edit process's connection (``EngineBinding.next_edit``: its endpoint
        and served name), with this one's key, headers, priorities and limits; None when none runs."""
        if next_edit is None:
            return None
        endpoint, model = next_edit
        return replace(self, endpoint=endpoint.rstrip("/"), model=model)

    def same_route(self, other: Connection) -> bool:
        """Only limits differ (context length, priority, timeouts: what a repository may tune):
        the backend, its client and all the health learned stay; only the limits are swapped
        (``Health.retune``). A storm of such changes rebuilt and re-probed everything, and closing
        the old client cut the chat streaming on it (tests/adversarial/test_connection.py)."""
        route = ("endpoint", "model", "api_key", "headers", "engine_pending")
        return all(getattr(self, name) == getattr(other, name) for name in route)

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.total_timeout_s, connect=self.connect_timeout_s)

    def client(self) -> httpx.AsyncClient:
        """The HTTP client of this connection: its key, headers, session id and timeouts; the
        environment's proxies only beyond loopback (httpclient.py)."""
        return http_client(self.timeout(), self.api_key, [(SESSION_HEADER, SESSION_ID), *self.headers],
                           via_proxy=not is_loopback(self.endpoint))


class LeasedClient:
    """One connection's HTTP client and the streams holding it (module doc): ``retire`` closes it
    now when none does, else when the last ``lease`` ends. Only the event loop touches it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.leases = 0
        self.retired = False

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[httpx.AsyncClient]:
        """The client, open until this ``async with`` ends; a client already closed (retired with
        nothing in flight) is a connection that is gone: UNAVAILABLE, as a refused connect is."""
        if self.http.is_closed:
            raise BackendError(ErrorKind.UNAVAILABLE, "the connection was replaced; its client is closed")
        self.leases += 1
        try:
            yield self.http
        finally:
            self.leases -= 1
            if self.retired and self.leases == 0:
                await asyncio.shield(self.http.aclose())  # a cancelled stream still closes it

    async def retire(self) -> None:
        """The route changed (or the server stops): no new user, closed once idle."""
        self.retired = True
        if self.leases == 0:
            await self.http.aclose()
