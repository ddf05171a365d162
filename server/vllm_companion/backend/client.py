"""The OpenAI-compatible engine client: vLLM, llama.cpp server, Ollama, TGI, a remote cluster.

Streams completions with three timeouts: connect, first token, total (the caller adds its own
wall-clock cap). Every failure leaves here as a classified ``BackendError``. Closing the stream
(``aclosing`` around ``stream_*``) closes the HTTP response, which makes vLLM abort the request.
Models are listed by listing.py (bounded); token streams go through httpx directly, on the
connection's one client (connection.py: key, headers, session id).
vLLM extras used when present: ``/v1/models`` ``max_model_len``, ``/tokenize``, ``/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx  # openai >= 3's transport

from ..config import redact_url
from ..loopback import is_loopback
from .connection import Connection, LeasedClient
from .errors import BackendError, ErrorKind, classify, retry_after, status_error

log = logging.getLogger(__name__)
MAX_LINE_BYTES = 1 << 20  # one server-sent event line
MAX_STREAM_BYTES = 64 << 20  # one streamed answer
MAX_ERROR_BYTES = 64 << 10
MAX_CONTEXT = 10_000_000  # a max_model_len beyond this is not a real model's
EXTRA_CHUNKS = 16  # chunks tolerated past max_tokens (role and empty chunks) before we cut
PROBE_TIMEOUT_S = 5.0
DRAIN_S = 0.05  # after [DONE], the wait for the body's end (an engine sends it at once)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    max_model_len: int | None


@dataclass(frozen=True)
class Chunk:
    text: str
    finish_reason: str | None = None


class Backend:
    """One connection's HTTP side, stateless about the endpoint: what it serves and whether it
    answers are the health's (backend/health.py), which keeps them once."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.endpoint = connection.endpoint
        self.root = self.endpoint[:-3] if self.endpoint.endswith("/v1") else self.endpoint
        self.client = LeasedClient(connection.client())  # streams lease it (connection.py)
        self._http = self.client.http
        self.on_loopback = is_loopback(self.endpoint)  # code sent there never leaves the machine

    async def close(self) -> None:
        """Closed now, or when the last stream on it ends (a route change mid-chat)."""
        await self.client.retire()

    def retune(self, connection: Connection) -> None:
        """The same route with other limits (``Connection.same_route``): requests in flight keep
        theirs, the next ones take these; nothing is closed or reopened."""
        self.connection = connection
        self._http.timeout = connection.timeout()

    async def served_model(self) -> tuple[ModelInfo, dict[str, int | None]]:
        """The configured model (or the endpoint's first one) and every listed model's
        ``max_model_len``, read now (the caller keeps them: backend/health.py)."""
        from .listing import fetch_models  # bounded (bytes, entries, parsed off the loop); it imports us

        # The SDK's models.list() parsed 100,000 cards on the event loop (~4 s) and raised on a
        # card that is not an object, so the status never settled (issue 23).
        models = (await fetch_models(self, self.connection.first_token_timeout_s)).models
        lengths = {m.id: m.max_model_len for m in models}
        wanted = self.connection.model
        chosen = next((m for m in models if m.id == wanted), None) if wanted else (models[0] if models else None)
        if chosen is None:
            if not wanted:
                raise BackendError(ErrorKind.NOT_FOUND, "the endpoint serves no model")
            log.warning("model %s not listed by %s; using it anyway", wanted, redact_url(self.endpoint))
            return ModelInfo(wanted, None), lengths
        return ModelInfo(chosen.id, chosen.max_model_len), lengths

    async def tokenize_count(self, text: str, model: str) -> int | None:
        """Token count of ``text`` without special tokens added; None where /tokenize is missing."""
        body = {"model": model, "prompt": text, "add_special_tokens": False}
        try:
            async with asyncio.timeout(min(PROBE_TIMEOUT_S, self.connection.first_token_timeout_s)):  # trickling
                async with self._http.stream("POST", f"{self.root}/tokenize", json=body) as resp:
                    raw = await _head(resp, MAX_ERROR_BYTES) if resp.status_code == 200 else b"null"
            data = json.loads(raw)  # over the cap: cut, not JSON, None (a lying /tokenize sent 256 MiB)
        except TimeoutError as exc:
            raise BackendError(ErrorKind.TIMEOUT, "/tokenize did not answer in time") from exc
        except (httpx.HTTPError, ValueError, RuntimeError):  # RuntimeError: the connection was replaced
            return None
        count = data.get("count", len(data.get("tokens", [])) or None) if isinstance(data, dict) else None
        return count if type(count) is int and 0 <= count < MAX_CONTEXT else None

    async def stream_completion(self, prompt: str, **params: Any) -> AsyncGenerator[Chunk, None]:
        """Stream ``/v1/completions`` for a raw prompt (FIM rendered by us, never ``suffix``);
        ``params`` name the model (the health's served one, or the chat's)."""
        body = {"prompt": prompt, "stream": True, **params}
        # aclosing: a cut (the caller closing this generator) must close the inner stream and its
        # response now, not when the garbage collector finalizes it (vLLM aborts on the close)
        stream = self._stream("/completions", body, chat=False)
        async with self.client.lease(), contextlib.aclosing(stream) as chunks:
            async for chunk in chunks:
                yield chunk

    async def stream_chat(self, messages: list[dict[str, str]], **params: Any) -> AsyncGenerator[Chunk, None]:
        body = {"messages": messages, "stream": True, **params}
        # aclosing: a cut (the caller closing this generator) must close the inner stream and its
        # response now, not when the garbage collector finalizes it (vLLM aborts on the close)
        stream = self._stream("/chat/completions", body, chat=True)
        async with self.client.lease(), contextlib.aclosing(stream) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _stream(self, path: str, body: dict[str, Any], chat: bool) -> AsyncGenerator[Chunk, None]:
        """POST and parse the server-sent events. httpx (the SDK's own transport) is used directly
        here: the SDK's typed request/response layer costs ~0.5 ms per request, twice the rest of
        the server's work (docs/performance.md). Every read is bounded: line and stream bytes, and
        ``max_tokens`` is enforced here too (a server that ignores it is cut, "length")."""
        response = None
        limit = int(body.get("max_tokens") or 4096) + EXTRA_CHUNKS
        try:
            async with asyncio.timeout(self.connection.first_token_timeout_s):
                request = self._http.build_request("POST", self.endpoint + path, json=body)
                response = await self._http.send(request, stream=True)
                if response.status_code != 200:
                    raise await _error_from(response)
                events = _events(response)
                first = await anext(events, None)
            if first is None:
                return
            yield _chunk(first, chat)
            async with asyncio.timeout(self.connection.total_timeout_s):
                async for count, event in _numbered(events, 2):
                    if count > limit:
                        yield Chunk("", "length")
                        return
                    yield _chunk(event, chat)
        except (GeneratorExit, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise classify(exc) from exc
        finally:
            if response is not None:
                await _quiet_close(response)


async def _numbered(events: AsyncIterator[dict[str, Any]], start: int) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    count = start
    async for event in events:
        yield count, event
        count += 1


async def _head(response: Any, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (the rest is never read: closing drops it)."""
    data = b""
    async for piece in response.aiter_bytes():
        data += piece
        if len(data) >= limit:
            break
    return data[:limit]


async def _error_from(response: Any) -> BackendError:
    data = await _head(response, MAX_ERROR_BYTES)
    wait = retry_after(response.headers.get("retry-after"))
    return status_error(response.status_code, data.decode("utf-8", "replace"), wait)


async def _lines(response: Any) -> AsyncIterator[bytes]:
    """The body's lines, each at most MAX_LINE_BYTES, the body at most MAX_STREAM_BYTES; linear
    in the bytes received however they are split."""
    parts: list[bytes] = []
    size = total = 0
    async for piece in response.aiter_bytes():
        total += len(piece)
        if total > MAX_STREAM_BYTES:
            raise BackendError(ErrorKind.SERVER, f"the engine sent more than {MAX_STREAM_BYTES >> 20} MiB")
        start = 0
        while (nl := piece.find(b"\n", start)) != -1:
            parts.append(piece[start:nl])
            yield b"".join(parts)
            parts, size, start = [], 0, nl + 1
        if start < len(piece):
            parts.append(piece[start:])
            size += len(piece) - start
        if size > MAX_LINE_BYTES:
            raise BackendError(ErrorKind.SERVER, "the engine sent an event line over 1 MiB")
    if parts:
        yield b"".join(parts)


async def _events(response: Any) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events to JSON objects; ``[DONE]`` ends; an ``error`` event raises."""
    lines = _lines(response)
    async for raw in lines:
        line = raw.decode("utf-8", "replace")
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            await _drain(lines)
            return
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise BackendError(ErrorKind.SERVER, f"malformed event from the engine: {payload[:80]!r}") from exc
        if not isinstance(event, dict):
            continue
        if "error" in event and not event.get("choices"):
            code = event.get("code")
            raise status_error(code if type(code) is int and 400 <= code < 600 else 500, json.dumps(event)[:2000])
        yield event


async def _drain(lines: AsyncIterator[bytes]) -> None:
    """What follows ``[DONE]`` (the chunked body's terminator), read for at most ``DRAIN_S``: a
    response closed before its body ends takes its connection with it, and every completion paid
    for a new TCP connection (issue 21: 0.2-0.4 ms of the server's added time, docs/performance.md).
    Bounded in bytes by ``_lines``; a stream cut by a stage still closes its connection (vLLM
    aborts the request when it does)."""
    try:
        async with asyncio.timeout(DRAIN_S):
            async for _ in lines:
                pass
    except (TimeoutError, BackendError):
        return


def _chunk(event: dict[str, Any], chat: bool) -> Chunk:
    choices = event.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return Chunk("")
    choice = choices[0]
    if chat:
        text = (choice.get("delta") or {}).get("content") or ""
    else:
        text = choice.get("text") or ""
    finish = choice.get("finish_reason")
    return Chunk(text if isinstance(text, str) else "", finish if isinstance(finish, str) else None)


async def _quiet_close(stream: Any) -> None:
    try:
        await asyncio.shield(stream.aclose())
    except BaseException:  # closing is best effort: the socket may already be gone
        log.debug("stream close failed", exc_info=True)
