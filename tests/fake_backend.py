"""A fake OpenAI-compatible engine on a real socket, for tests and benchmarks.

It stands in for what we do not own (the engine) at its real boundary: HTTP on 127.0.0.1.
Behaviour is scripted per request with ``Reply`` objects (text chunks, delays, HTTP errors,
hangs, a connection dropped mid-stream, an endless loop); every request and whether the client
closed the stream early is recorded, so tests can assert what the server sent and when it stopped.
Warm-ups (completion/warm.py: the ``user`` field is ``WARM_USER``) are recorded apart, in ``warms``,
and answered ``warm_reply`` without consuming the script: ``requests`` holds the real requests only.
Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions,
POST /tokenize.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vllm_companion.completion.warm import WARM_USER
from vllm_companion.prompts import FAMILIES


@dataclass
class Reply:
    chunks: list[str] = field(default_factory=lambda: ["pass"])
    delay_s: float = 0.0  # before each chunk
    first_delay_s: float = 0.0  # before the first chunk (or the headers, with ``hang``)
    status: int = 200
    error_body: str = ""
    hang: bool = False  # accept, then never answer
    drop_after: int | None = None  # close the connection after this many chunks
    loop: str | None = None  # after the chunks, repeat this forever (until the client leaves)
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)  # on an error answer, e.g. Retry-After
    endless_line: bool = False  # hostile: one SSE line that never ends (until the client leaves)


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    started: float
    ended: float | None = None
    chunks_sent: int = 0
    client_closed: bool = False  # the client hung up before the stream ended
    headers: dict[str, str] = field(default_factory=dict)


class FakeBackend:
    def __init__(self, model: str = "qwen2.5-coder-1.5b", max_model_len: int | None = 4096) -> None:
        self.model = model
        self.max_model_len = max_model_len
        # Strings /tokenize counts as one token: by default every family's FIM tokens, like a
        # real coder model; a test empties it to play a model without them.
        self.special_tokens: set[str] = {t for f in FAMILIES for t in f.fim_tokens}
        self.tokenize_enabled = True
        self.tokenize_trickle_s: float | None = None  # hostile: /tokenize sends a byte every N s
        self.models_hang = False  # hostile: /v1/models accepts and never answers
        self.models_asked = 0  # GET /v1/models requests received
        self.script: list[Reply] = []  # consumed one per generation request
        self.default: Reply | Callable[[dict[str, Any]], Reply] = Reply()
        self.health_enabled = True  # llama-cpp-python's server has no /health
        self.access_log = False  # print uvicorn-style access lines, as engines do
        self.chat_status: int = 200  # e.g. 400 to simulate a missing chat template
        self.chat_error_body: str = ""
        self.api_key: str | None = None  # like vLLM's --api-key: /v1/* needs "Bearer <key>"
        self.unauthorized = 0  # requests refused for a missing or wrong key
        self._headers: dict[str, str] = {}
        self.requests: list[Seen] = []
        self.warms: list[Seen] = []  # warm-ups on open/focus (never in ``requests``)
        self.warm_reply = Reply(["x"])
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def generation_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith("completions")]

    async def start(self, port: int = 0) -> FakeBackend:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections, as a dying engine does (Python 3.11's
        Server.close keeps keep-alive connections serving)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    # -- HTTP ----------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, body, headers = request
                self._headers = headers
                if self.api_key and path.startswith("/v1") and headers.get("authorization") != f"Bearer {self.api_key}":
                    self.unauthorized += 1
                    keep = await _send_json(writer, 401, {"error": "Unauthorized"})
                else:
                    keep = await self._route(method, path, body, reader, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        if self.access_log:
            status = 404 if path == "/health" and not self.health_enabled else 200
            print(f'INFO:     127.0.0.1:50000 - "{method} {path} HTTP/1.1" {status}', flush=True)
        if path == "/health":
            return await _send_json(writer, 200 if self.health_enabled else 404, {})
        if path == "/v1/models":
            self.models_asked += 1
        if path == "/v1/models" and self.models_hang:
            await asyncio.sleep(3600)
        if path == "/v1/models":
            card: dict[str, Any] = {"id": self.model, "object": "model", "owned_by": "fake"}
            if self.max_model_len is not None:
                card["max_model_len"] = self.max_model_len
            return await _send_json(writer, 200, {"object": "list", "data": [card]})
        if path == "/tokenize":
            if not self.tokenize_enabled:
                return await _send_json(writer, 404, {"detail": "Not Found"})
            prompt = body.get("prompt", "")
            count = 1 if prompt in self.special_tokens else max(1, len(prompt) // 3)
            if self.tokenize_trickle_s is not None:
                return await _trickle(writer, {"count": count}, self.tokenize_trickle_s)
            return await _send_json(writer, 200, {"count": count, "tokens": list(range(count))})
        if path in ("/v1/completions", "/v1/chat/completions"):
            seen = Seen(path, body, time.monotonic(), headers=dict(self._headers))
            (self.warms if is_warm(body) else self.requests).append(seen)
            if path.endswith("chat/completions") and self.chat_status != 200:
                seen.ended = time.monotonic()
                return await _send_json(writer, self.chat_status, {"error": {"message": self.chat_error_body}})
            return await self._generate(seen, reader, writer)
        return await _send_json(writer, 404, {"error": {"message": f"no route {path}"}})

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self.script:
            return self.script.pop(0)
        return self.default(body) if callable(self.default) else self.default

    async def _generate(self, seen: Seen, reader: Any, writer: Any) -> bool:
        reply = self.warm_reply if is_warm(seen.body) else self._next_reply(seen.body)
        if reply.hang:
            await asyncio.sleep(3600)
        await asyncio.sleep(reply.first_delay_s)
        if reply.status != 200:
            seen.ended = time.monotonic()
            body = {"error": {"message": reply.error_body or "fake error"}}
            return await _send_json(writer, reply.status, body, reply.headers)
        if reply.endless_line:
            return await _endless_line(writer, seen)
        chat = seen.path.endswith("chat/completions")
        if not seen.body.get("stream"):
            text = "".join(reply.chunks)
            seen.ended = time.monotonic()
            return await _send_json(writer, 200, _final(text, chat, reply.finish_reason))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        finished = False
        try:
            for i, piece in enumerate(_pieces(reply)):
                if i and reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                if reader.at_eof():  # the client hung up (EOF is fed without reading)
                    seen.client_closed = True
                    break
                if reply.drop_after is not None and i >= reply.drop_after:
                    break
                writer.write(_chunk(_sse(_delta(piece, chat))))
                await writer.drain()
                seen.chunks_sent += 1
                if not reply.delay_s:
                    await asyncio.sleep(0)
            else:
                writer.write(_chunk(_sse(_delta("", chat, reply.finish_reason)) + b"data: [DONE]\n\n") + b"0\r\n\r\n")
                await writer.drain()
                finished = True
        except ConnectionError:
            seen.client_closed = True
        finally:
            seen.ended = time.monotonic()
        return finished  # keep-alive after a complete stream, like vLLM


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _pieces(reply: Reply) -> Any:
    yield from reply.chunks
    if reply.loop is not None:
        for _ in range(100_000):
            yield reply.loop


def _delta(text: str, chat: bool, finish: str | None = None) -> dict[str, Any]:
    if chat:
        choice: dict[str, Any] = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        return {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}
    choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
    return {"id": "x", "object": "text_completion", "created": 0, "model": "m", "choices": [choice]}


def _final(text: str, chat: bool, finish: str) -> dict[str, Any]:
    if chat:
        msg = {"role": "assistant", "content": text}
        choice: dict[str, Any] = {"index": 0, "message": msg, "finish_reason": finish}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
    return {"id": "x", "object": "text_completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, Any], dict[str, str]] | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    raw = await reader.readexactly(length) if length else b""
    try:
        body = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        body = {}
    return method, path.split("?", 1)[0], body, headers


async def _send_json(
    writer: asyncio.StreamWriter, status: int, obj: Any, headers: dict[str, str] | None = None
) -> bool:
    data = json.dumps(obj).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n{extra}\r\n"
    writer.write(head.encode() + data)
    await writer.drain()
    return True


async def _trickle(writer: asyncio.StreamWriter, obj: Any, every_s: float) -> bool:
    """Send a JSON answer one byte at a time (a hostile or broken server)."""
    data = json.dumps(obj).encode()
    writer.write(f"HTTP/1.1 200 X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n".encode())
    for i in range(len(data)):
        await asyncio.sleep(every_s)
        writer.write(data[i : i + 1])
        await writer.drain()
    return True


async def _endless_line(writer: asyncio.StreamWriter, seen: Seen) -> bool:
    """An event stream whose first line never ends: 64 KiB pieces, up to 256 MiB, until the
    client hangs up (a client without a line cap grows without bound)."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    writer.write(_chunk(b"data: " + b"x" * 65536))
    try:
        for _ in range(4096):
            writer.write(_chunk(b"x" * 65536))
            await writer.drain()
            seen.chunks_sent += 1
    except ConnectionError:
        seen.client_closed = True
    seen.ended = time.monotonic()
    return False


def is_warm(body: dict[str, Any]) -> bool:
    """A warm-up (completion/warm.py), not a completion the user waits for."""
    return body.get("user") == WARM_USER


def prompt_text(body: dict[str, Any]) -> str:
    """A generation request's prompt as one string (a completion's prompt, or the chat messages' text)."""
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
    return str(body.get("prompt", ""))


def canned(answers: list[tuple[str, Reply]], fallback: Reply) -> Callable[[dict[str, Any]], Reply]:
    """A ``default`` that replays a canned answer per prompt pattern: the first (substring, reply)
    whose substring is in the prompt, else ``fallback`` (the next-edit replays, one per family)."""
    def reply(body: dict[str, Any]) -> Reply:
        text = prompt_text(body)
        return next((r for pattern, r in answers if pattern in text), fallback)
    return reply


def dead_port() -> int:
    """A port with nothing listening (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve_forever(port: int, completion: str, chat_words: int, delay_s: float) -> None:
    """Stand-alone fake engine for the benchmarks and the real-VS-Code test: completions answer
    ``completion``; chat answers a short markdown reply with code, then ``chat_words`` more words,
    one every ``delay_s`` (long enough to press Stop)."""
    fake = await FakeBackend().start(port)

    def reply(body: dict[str, Any]) -> Reply:
        if "messages" in body:
            head = ["Here is ", "**an answer** ", "with code:\n\n```python\n", "print('hi')\n", "```\n\n"]
            return Reply(chunks=head + [f"word{i} " for i in range(chat_words)], delay_s=delay_s)
        return Reply(chunks=[completion])

    fake.default = reply
    print(fake.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":  # python -m tests.fake_backend [PORT] [COMPLETION] [CHAT_WORDS] [DELAY_S]
    import sys

    args = sys.argv[1:]
    asyncio.run(_serve_forever(
        int(args[0]) if args else 0,
        args[1] if len(args) > 1 else "x",
        int(args[2]) if len(args) > 2 else 0,
        float(args[3]) if len(args) > 3 else 0.0,
    ))
