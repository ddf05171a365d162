"""The OpenAI-compatible engine client: vLLM, llama.cpp server, Ollama, TGI, a remote cluster.

Streams completions with three timeouts: connect, first token, total (the caller adds its own
wall-clock cap). Every failure leaves here as a classified ``BackendError``. Closing the stream
(``aclosing`` around ``stream_*``) closes the HTTP response, which makes vLLM abort the request.
vLLM extras used when present: ``/v1/models`` ``max_model_len``, ``/tokenize``, ``/health``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai

from ..config import BackendSettings
from .errors import BackendError, ErrorKind, classify

try:  # openai >= 3 ships its own httpx fork
    import httpx2 as httpx
except ImportError:  # pragma: no cover - openai 1.x/2.x
    import httpx  # type: ignore[no-redef]

log = logging.getLogger(__name__)


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
            base_url=self.endpoint, api_key=settings.api_key or "EMPTY", max_retries=0, timeout=timeout
        )
        self._http = httpx.AsyncClient(timeout=timeout, headers=self._auth_headers())
        self._model: ModelInfo | None = None

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}

    async def close(self) -> None:
        await self.client.close()
        await self._http.aclose()

    async def model_info(self, refresh: bool = False) -> ModelInfo:
        """The configured model (or the endpoint's first one) and its context length, cached."""
        if self._model is not None and not refresh:
            return self._model
        try:
            async with asyncio.timeout(self.settings.first_token_timeout_s):
                page = await self.client.models.list()
        except Exception as exc:
            raise classify(exc) from exc
        models = list(page.data)
        wanted = self.settings.model
        chosen = next((m for m in models if m.id == wanted), None) if wanted else (models[0] if models else None)
        if chosen is None:
            if not wanted:
                raise BackendError(ErrorKind.NOT_FOUND, "the endpoint serves no model")
            log.warning("model %s not listed by %s; using it anyway", wanted, self.endpoint)
            self._model = ModelInfo(wanted, None)
            return self._model
        extra: dict[str, Any] = chosen.model_extra or {}
        length = extra.get("max_model_len")
        self._model = ModelInfo(chosen.id, int(length) if isinstance(length, int | float) else None)
        return self._model

    async def tokenize_count(self, text: str) -> int | None:
        """Token count of ``text`` without special tokens added; None where /tokenize is missing."""
        model = self._model.id if self._model else self.settings.model
        try:
            resp = await self._http.post(
                f"{self.root}/tokenize", json={"model": model, "prompt": text, "add_special_tokens": False}
            )
        except Exception:
            return None
        if resp.status_code != 200:
            return None
        data = resp.json()
        count = data.get("count", len(data.get("tokens", [])) or None) if isinstance(data, dict) else None
        return int(count) if isinstance(count, int) else None

    async def stream_completion(self, prompt: str, **params: Any) -> AsyncIterator[Chunk]:
        """Stream ``/v1/completions`` for a raw prompt (FIM rendered by us, never ``suffix``)."""
        model = (await self.model_info()).id
        create = self.client.completions.create
        async for chunk in self._stream(create(model=model, prompt=prompt, stream=True, **params), chat=False):
            yield chunk

    async def stream_chat(self, messages: list[dict[str, str]], **params: Any) -> AsyncIterator[Chunk]:
        model = (await self.model_info()).id
        create = self.client.chat.completions.create
        async for chunk in self._stream(create(model=model, messages=messages, stream=True, **params), chat=True):
            yield chunk

    async def _stream(self, opening: Any, chat: bool) -> AsyncIterator[Chunk]:
        stream = None
        try:
            async with asyncio.timeout(self.settings.first_token_timeout_s):
                stream = await opening
                iterator = stream.__aiter__()
                first = await anext(iterator, None)
            if first is None:
                return
            yield _chunk(first, chat)
            async with asyncio.timeout(self.settings.total_timeout_s):
                async for item in iterator:
                    yield _chunk(item, chat)
        except (GeneratorExit, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise classify(exc) from exc
        finally:
            if stream is not None:
                await _quiet_close(stream)
            elif asyncio.iscoroutine(opening):
                opening.close()


def _chunk(item: Any, chat: bool) -> Chunk:
    choices = getattr(item, "choices", None) or []
    if not choices:
        return Chunk("")
    choice = choices[0]
    text = (choice.delta.content if chat and choice.delta else getattr(choice, "text", "")) or ""
    return Chunk(text, choice.finish_reason)


async def _quiet_close(stream: Any) -> None:
    try:
        await asyncio.shield(stream.close())
    except BaseException:  # closing is best effort: the socket may already be gone
        log.debug("stream close failed", exc_info=True)
