"""The stdio transport: LSP base-protocol framing read with bounds, every bad message answered.

pygls 2.1.1's reader (``pygls/io_.py`` ``run_async``) trusts the wire: ``Content-Length:
1000000000000`` makes ``stdin.read(n)`` allocate n bytes up front (``MemoryError`` ended the
server), a header line without a newline is read whole, a body nested 5,000 deep raises
``RecursionError`` in ``json.loads`` that nobody answers (the client waits forever), and the JSON
is parsed on the event loop. Here, in the reader's thread:

- a header line is read at most ``MAX_LINE`` bytes at a time; a body over ``MAX_BODY`` (64 MiB,
  as much as an answer from the engine may hold, docs/security.md) is not read: it is answered
  with Invalid Request and the reader looks for the next ``Content-Length`` header (the claimed
  body's bytes, if they come, are skipped as garbage; a header glued to them is still found);
- a body that ``json.loads`` refuses (not JSON, not UTF-8, nested past Python's recursion limit)
  is answered with Parse error (-32700), under the request's id when it can be read from the
  body's first top-level members, else id null (JSON-RPC 2.0 section 5.1);
- a request holding a number that is not finite (``Infinity``, ``NaN``, ``1e400``: RFC 8259
  section 6 has none, Python's json accepts them) is answered with InvalidParams before any
  handler sees it.

Each message's arrival (its first header line) goes to its handler in ``arrival`` (a context
variable, copied by pygls into the handler's context), so the completion cap can count from
it. Specification: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#baseProtocol
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import re
import sys
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, BinaryIO

from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from .protocol import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR, CompanionProtocol, valid_id

log = logging.getLogger(__name__)
MAX_LINE = 8 * 1024
MAX_BODY = 64 * 1024 * 1024
_HEADER = re.compile(rb"Content-Length:[ \t]*(\d{1,20})[ \t]*\r?\n\Z")
_MEMBER = re.compile(
    rb'\s*("(?:[^"\\]|\\.){0,64}")\s*:\s*("(?:[^"\\]|\\.){0,256}"|-?\d{1,19}|true|false|null)\s*([,}])'
)
arrival: contextvars.ContextVar[float] = contextvars.ContextVar("arrival")


def arrived() -> float:
    """When the message being handled began to arrive (``time.monotonic``), or now."""
    return arrival.get(time.monotonic())


@dataclass
class Frame:
    started: float  # time.monotonic() at its first header line
    data: Any = None  # the parsed body
    error: tuple[int, str] | None = None  # (code, message) to answer instead
    msg_id: int | str | None = None  # the id to answer an error under
    not_finite: bool = False  # the body holds Infinity, NaN or a float beyond double range


class FrameReader:
    """Reads and parses one message at a time from a blocking binary stream (in a thread)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def next(self) -> Frame | None:
        """The next message, or None at the end of the stream."""
        header = self._headers()
        if header is None:
            return None
        started, length = header
        if length > MAX_BODY:
            log.warning("a message of %d bytes is over the %d-byte limit: skipped", length, MAX_BODY)
            return Frame(started, error=(INVALID_REQUEST, f"message of {length} bytes is over the limit of {MAX_BODY}"))
        body = self._stream.read(length) if length else b""
        if len(body) < length:
            return None
        return decode(started, body)

    def _headers(self) -> tuple[float, int] | None:
        """Header lines up to the blank line after a ``Content-Length``: (arrival, length)."""
        started: float | None = None
        length: int | None = None
        tail = b""
        while True:
            line = self._stream.readline(MAX_LINE)
            if not line:
                return None
            started = started or time.monotonic()
            if length is not None and line.endswith(b"\n") and not line.strip():
                return started, length
            tail = (tail + line)[-64:]
            if (match := _HEADER.search(tail)) is not None:
                length = int(match.group(1))
            if line.endswith(b"\n"):
                tail = b""


def decode(started: float, body: bytes) -> Frame:
    """Parse a body; a refused one keeps the id its first top-level members name, if any."""
    not_finite = False

    def number(text: str) -> float:
        nonlocal not_finite
        value = float(text)
        not_finite = not_finite or not math.isfinite(value)
        return value

    try:
        data = json.loads(body, parse_float=number, parse_constant=number)
    except (ValueError, RecursionError, MemoryError) as exc:
        detail = "nested too deep" if isinstance(exc, RecursionError) else str(exc)[:200] or type(exc).__name__
        return Frame(started, error=(PARSE_ERROR, f"Parse error: {detail}"), msg_id=recover_id(body))
    return Frame(started, data=data, not_finite=not_finite)


def recover_id(body: bytes) -> int | str | None:
    """The id among the first top-level members of a JSON object, when they are all scalars up to
    it (``{"jsonrpc": "2.0", "id": 7, "method": ...}``, as clients write it); else None. Reads at
    most 16 members; anchored at the opening brace, so nothing nested can pass for the id."""
    pos = len(body) - len(body.lstrip())
    if body[pos : pos + 1] != b"{":
        return None
    pos += 1
    for _ in range(16):
        match = _MEMBER.match(body, pos)
        if match is None:
            return None
        try:
            key, value = json.loads(match.group(1)), json.loads(match.group(2))
        except ValueError:
            return None
        if key == "id":
            return value if valid_id(value) else None
        if match.group(3) == b"}":
            return None
        pos = match.end()
    return None


def dispatch(protocol: CompanionProtocol, frame: Frame) -> None:
    """Hand a message to pygls, or answer what is wrong with it."""
    data = frame.data
    if frame.error is not None:
        protocol.answer_error(frame.msg_id, *frame.error)
    elif not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
        if not isinstance(data, dict) or "method" in data:
            msg_id = data.get("id") if isinstance(data, dict) and valid_id(data.get("id")) else None
            protocol.answer_error(msg_id, INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message object")
    elif frame.not_finite and "method" in data:
        if "id" in data:
            msg_id = data["id"] if valid_id(data["id"]) else None
            message = f"invalid params for {str(data['method'])[:100]!r}: a number is Infinity, NaN or out of range"
            protocol.answer_error(msg_id, INVALID_PARAMS if msg_id is not None else INVALID_REQUEST, message)
        else:
            log.warning("notification %.100r with a non-finite number: ignored", data["method"])
    else:
        token = arrival.set(frame.started)
        try:
            protocol.handle_message(protocol.structure_message(data))
        except Exception:
            log.exception("unable to handle a message")
        finally:
            arrival.reset(token)


async def serve(protocol: CompanionProtocol, stream: BinaryIO, stop: threading.Event, pool: Executor) -> None:
    """Read and dispatch until the stream ends or the server stops (pygls's loop, bounded)."""
    loop = asyncio.get_running_loop()
    reader = FrameReader(stream)
    while not stop.is_set():
        frame = await loop.run_in_executor(pool, reader.next)
        if frame is None:
            break
        dispatch(protocol, frame)


def serve_stdio(server: LanguageServer, stdin: BinaryIO | None, stdout: BinaryIO | None) -> None:
    """pygls's ``start_io`` (``_start_io_async``) with this module's reader."""
    protocol = server.protocol
    assert isinstance(protocol, CompanionProtocol)
    server._stop_event = stop = threading.Event()
    protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    try:
        asyncio.run(serve(protocol, stdin or sys.stdin.buffer, stop, server.thread_pool))
    except BrokenPipeError:
        log.error("the connection to the client is lost; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
