"""The OpenAI-compatible engine client: vLLM, llama.cpp server, Ollama, TGI, a remote cluster.

Streams completions with three timeouts: connect, first token, total (the caller adds its own
wall-clock cap). Every failure leaves here as a classified ``BackendError``. Closing the stream
(``aclosing`` around ``stream_*``) closes the HTTP response, which makes vLLM abort the request.
``openai.AsyncOpenAI`` lists models; token streams go through its transport (httpx) directly.
vLLM extras used when present: ``/v1/models`` ``max_model_len``, ``/tokenize``, ``/health``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx  # openai >= 3's transport
import openai

from ..config import BackendSettings, redact_url
from ..engine.registry import is_loopback
from .availability import Availability
from .errors import BackendError, ErrorKind, classify, retry_after, status_error

log = logging.getLogger(__name__)
MAX_LINE_BYTES = 1 << 20  # one server-sent event line
MAX_STREAM_BYTES = 64 << 20  # one streamed answer
MAX_ERROR_BYTES = 64 << 10
MAX_CONTEXT = 10_000_000  # a max_model_len beyond this is not a real model's
EXTRA_CHUNKS = 16  # chunks tolerated past max_tokens (role and empty chunks) before we cut
PROBE_TIMEOUT_S = 5.0
# One random id per language server, on every request: a fleet's router (engine/fleet.py,
# consistent_hash) sends one editor's prompts, which share their prefix, to the same replica.
SESSION_HEADER = "X-Session-ID"
SESSION_ID = secrets.token_hex(8)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    max_model_len: int | None


@dataclass(frozen=True)
class Chunk:
    text: str
    finish_reason: str | None = None


class Backend:
    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint.rstrip("/")
        self.root = self.endpoint[:-3] if self.endpoint.endswith("/v1") else self.endpoint
        timeout = httpx.Timeout(settings.total_timeout_s, connect=settings.connect_timeout_s)
        self.client = openai.AsyncOpenAI(
            base_url=self.endpoint, api_key=settings.api_key or "EMPTY", max_retries=0, timeout=timeout,
            default_headers=self._auth_headers(),
        )
        self._http = httpx.AsyncClient(timeout=timeout, headers=self._auth_headers())
        self._model: ModelInfo | None = None
        self._lengths: dict[str, int | None] = {}  # every listed model's max_model_len
        self.availability = Availability()
        self.on_loopback = is_loopback(self.endpoint)  # code sent there never leaves the machine

    def _auth_headers(self) -> dict[str, str]:
        """``backend.headers`` (a gateway's own tokens) and the bearer key; neither is ever logged."""
        headers = {SESSION_HEADER: SESSION_ID, **self.settings.headers}
        if self.settings.api_key:  # the key wins over a header of the same name
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    async def close(self) -> None:
        await self.client.close()
        await self._http.aclose()

    async def model_info(self, refresh: bool = False) -> ModelInfo:
        """The configured model (or the endpoint's first one) and its context length, cached."""
        if self._model is not None and not refresh:
            return self._model
        from .listing import fetch_models  # bounded (bytes, entries, parsed off the loop); it imports us

        # The SDK's models.list() parsed 100,000 cards on the event loop (~4 s) and raised on a
        # card that is not an object, so the status never settled (issue 23).
        models = (await fetch_models(self, self.settings.first_token_timeout_s)).models
        self._lengths = {m.id: m.max_model_len for m in models}
        wanted = self.settings.model
        chosen = next((m for m in models if m.id == wanted), None) if wanted else (models[0] if models else None)
        if chosen is None:
            if not wanted:
                raise BackendError(ErrorKind.NOT_FOUND, "the endpoint serves no model")
            log.warning("model %s not listed by %s; using it anyway", wanted, redact_url(self.endpoint))
            self._model = ModelInfo(wanted, None)
            return self._model
        self._model = ModelInfo(chosen.id, chosen.max_model_len)
        return self._model

    async def context_length(self, model: str, default: int) -> int:
        """``max_model_len`` of ``model`` as the endpoint lists it (each model its own), else
        ``default``."""
        if model not in self._lengths:
            await self.model_info(refresh=self._model is None or model != self._model.id)
        return self._lengths.get(model) or default

    @property
    def cached_model(self) -> ModelInfo | None:
        return self._model


    def forget_model(self) -> None:
        """Re-read the served model next time (the engine went away and may come back different)."""
        self._model = None

    async def tokenize_count(self, text: str) -> int | None:
        """Token count of ``text`` without special tokens added; None where /tokenize is missing."""
        model = self._model.id if self._model else self.settings.model
        body = {"model": model, "prompt": text, "add_special_tokens": False}
        try:
            async with asyncio.timeout(min(PROBE_TIMEOUT_S, self.settings.first_token_timeout_s)):  # trickling
                resp = await self._http.post(f"{self.root}/tokenize", json=body)
                data = json.loads(resp.content[:MAX_ERROR_BYTES]) if resp.status_code == 200 else None
        except TimeoutError as exc:
            raise BackendError(ErrorKind.TIMEOUT, "/tokenize did not answer in time") from exc
        except (httpx.HTTPError, ValueError):
            return None
        count = data.get("count", len(data.get("tokens", [])) or None) if isinstance(data, dict) else None
        return count if type(count) is int and 0 <= count < MAX_CONTEXT else None

    async def stream_completion(self, prompt: str, **params: Any) -> AsyncGenerator[Chunk, None]:
        """Stream ``/v1/completions`` for a raw prompt (FIM rendered by us, never ``suffix``)."""
        model = params.pop("model", None) or (await self.model_info()).id
        body = {"model": model, "prompt": prompt, "stream": True, **params}
        async for chunk in self._stream("/completions", body, chat=False):
            yield chunk

    async def stream_chat(self, messages: list[dict[str, str]], **params: Any) -> AsyncGenerator[Chunk, None]:
        model = params.pop("model", None) or (await self.model_info()).id
        body = {"model": model, "messages": messages, "stream": True, **params}
        async for chunk in self._stream("/chat/completions", body, chat=True):
            yield chunk

    async def _stream(self, path: str, body: dict[str, Any], chat: bool) -> AsyncGenerator[Chunk, None]:
        """POST and parse the server-sent events. httpx (the SDK's own transport) is used directly
        here: the SDK's typed request/response layer costs ~0.5 ms per request, twice the rest of
        the server's work (docs/performance.md). Every read is bounded: line and stream bytes, and
        ``max_tokens`` is enforced here too (a server that ignores it is cut, "length")."""
        response = None
        limit = int(body.get("max_tokens") or 4096) + EXTRA_CHUNKS
        try:
            async with asyncio.timeout(self.settings.first_token_timeout_s):
                request = self._http.build_request("POST", self.endpoint + path, json=body)
                response = await self._http.send(request, stream=True)
                if response.status_code != 200:
                    raise await _error_from(response)
                events = _events(response)
                first = await anext(events, None)
            if first is None:
                return
            yield _chunk(first, chat)
            async with asyncio.timeout(self.settings.total_timeout_s):
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


async def _error_from(response: Any) -> BackendError:
    data = b""
    async for piece in response.aiter_bytes():
        data += piece
        if len(data) >= MAX_ERROR_BYTES:
            break
    wait = retry_after(response.headers.get("retry-after"))
    return status_error(response.status_code, data[:MAX_ERROR_BYTES].decode("utf-8", "replace"), wait)


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
    async for raw in _lines(response):
        line = raw.decode("utf-8", "replace")
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
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
