"""One error taxonomy for everything that can go wrong talking to an engine.

``classify`` maps any exception (openai's, httpx's, asyncio's, OS errors) to a ``BackendError``
with a kind; request handlers turn it into an empty answer or a JSON-RPC error, background code
into a ``vllmCompanion/status`` notification plus a throttled message.

``UPSTREAM`` is the endpoint answering that what stands behind it failed this one request: a
gateway's 502/504, a fleet router's own error bodies when the worker it picked is unreachable
(vllm-router 0.1.17, measured: 500 ``Request failed: error sending request for url (...)``, with
``Failed to get response body`` and ``Stream error`` on the same paths), or an answer cut off
mid-stream. The next request may be served by another worker, so it is request-local (issue 19,
point 10: one dead replica made the language server call the whole fleet down). A router's "no
worker at all" (503 ``No available workers``) stays ``OVERLOADED``: that one is the endpoint's.
"""

from __future__ import annotations

import asyncio
import enum
import json

import httpx2 as httpx  # openai >= 3's transport
import openai


class ErrorKind(enum.Enum):
    UNAVAILABLE = "unavailable"  # nothing listening, connection refused or dropped
    TIMEOUT = "timeout"  # connect, first token or total time exceeded
    OVERLOADED = "overloaded"  # 429 / 503: try again later
    BAD_REQUEST = "bad-request"  # 400 / 422: our request was refused
    CONTEXT_LENGTH = "context-length"  # 400 because the prompt is too long
    TEMPLATE = "template"  # chat template missing / rejected
    AUTH = "auth"  # 401 / 403
    NOT_FOUND = "not-found"  # 404: wrong endpoint or model
    CANCELLED = "cancelled"
    SERVER = "server"  # 5xx or a malformed stream
    UPSTREAM = "upstream"  # a router/gateway answered: the worker behind it failed this request
    INTERNAL = "internal"  # a bug of ours

    @property
    def request_local(self) -> bool:
        """Says nothing about the endpoint: this request's own problem (or our bug)."""
        return self in {ErrorKind.BAD_REQUEST, ErrorKind.CONTEXT_LENGTH, ErrorKind.CANCELLED, ErrorKind.INTERNAL,
                        ErrorKind.UPSTREAM}

    @property
    def transient(self) -> bool:
        return self in {ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT, ErrorKind.OVERLOADED, ErrorKind.SERVER,
                        ErrorKind.UPSTREAM}


class BackendError(Exception):
    def __init__(
        self, kind: ErrorKind, message: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s  # the server's Retry-After, when it sent one

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


_LENGTH_HINTS = ("maximum context length", "context length", "too long", "max_model_len", "prompt is too long")
_TEMPLATE_HINTS = ("chat template", "chat_template", "template not found", "no template")
MAX_BODY_CHARS = 2000
# vllm-router 0.1.17's plain-text answers about one worker (src/routers/http/router.rs), lower case.
_ROUTER_WORKER_HINTS = ("request failed: error sending request for url", "failed to get response body",
                        "stream error:", "failed to send request to worker", "no worker response")
# httpx's words for an answer whose body ended early (h11: the peer closed mid-body).
_CUT_OFF_HINTS = ("incomplete chunked read", "peer closed connection without sending complete message body")


def _status_kind(status: int, text: str) -> ErrorKind:
    lowered = text.lower()
    if status in (502, 504) or (status >= 500 and lowered.startswith(_ROUTER_WORKER_HINTS)):
        return ErrorKind.UPSTREAM
    if status in (400, 422) and any(h in lowered for h in _LENGTH_HINTS):
        return ErrorKind.CONTEXT_LENGTH
    if any(h in lowered for h in _TEMPLATE_HINTS):
        return ErrorKind.TEMPLATE
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status in (429, 503):
        return ErrorKind.OVERLOADED
    if status in (400, 413, 422):
        return ErrorKind.BAD_REQUEST
    return ErrorKind.SERVER


def retry_after(value: str | None) -> float | None:
    """RFC 9110 section 10.2.3 ``Retry-After`` in seconds (delay form; a date counts as 30 s)."""
    if not value:
        return None
    try:
        seconds = float(value.strip()[:32])
    except ValueError:
        return 30.0
    return seconds if 0 <= seconds < 1e9 else None


def status_error(status: int, body: str, retry_after_s: float | None = None) -> BackendError:
    """An HTTP error answer (any server's JSON shape: OpenAI, vLLM, TGI, Ollama) as a BackendError."""
    message = body
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            err = data.get("error", data)
            if isinstance(err, dict):
                message = str(err.get("message") or err.get("detail") or err)
            elif isinstance(err, str):
                message = err
            elif "detail" in data:
                message = str(data["detail"])
    except ValueError:
        pass
    message = message.strip()[:500] or f"HTTP {status}"
    return BackendError(_status_kind(status, message), message, status, retry_after_s)


def classify(exc: BaseException) -> BackendError:
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        return BackendError(ErrorKind.CANCELLED, "cancelled")
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | TimeoutError | httpx.TimeoutException):
        return BackendError(ErrorKind.TIMEOUT, "the engine did not answer in time")
    if isinstance(exc, openai.APIStatusError):
        plain = exc.body if isinstance(exc.body, str) else ""  # a plain-text answer (a router's) is its body
        body = (plain or exc.message or "")[:MAX_BODY_CHARS]
        return BackendError(_status_kind(exc.status_code, body), body[:500], exc.status_code)
    if isinstance(exc, httpx.RemoteProtocolError) and any(h in str(exc).lower() for h in _CUT_OFF_HINTS):
        return BackendError(ErrorKind.UPSTREAM, "the answer was cut off mid-stream")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError | ConnectionError | OSError):
        return BackendError(ErrorKind.UNAVAILABLE, f"cannot reach the engine ({exc.__class__.__name__})")
    if isinstance(exc, openai.APIError):
        return BackendError(ErrorKind.SERVER, f"malformed answer from the engine: {exc}"[:500])
    return BackendError(ErrorKind.INTERNAL, f"{exc.__class__.__name__}: {exc}"[:500])
