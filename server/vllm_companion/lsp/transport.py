"""The stdio transport: messages read ahead on a thread of their own, every bad one answered.

framing.py reads and parses each message with bounds. This module runs that reader and hands its
frames to pygls on the event loop:

- The reader runs ahead on a daemon thread, not one message per round trip through the loop, so
  a message's arrival is stamped when its first header line comes off the pipe, however busy the
  loop is. Measured with 50 inline completions written at once against a hung engine (1 s cap):
  stamped only when the loop asked for the next message, the answers reached the client up to
  234 ms past the cap. What is read ahead is bounded (``BACKLOG_FRAMES`` frames and one
  ``MAX_BODY`` of bodies beyond the first): past that the thread stops reading, the pipe fills and
  the client's writes wait (backpressure, not a growing queue). The thread is a daemon: blocked
  on the pipe, it does not hold up ``exit``.
- A bad message is answered: framing errors and bodies that do not parse (framing.py); a body that
  is not a JSON-RPC 2.0 object with Invalid Request; a request holding a number that is not finite
  with InvalidParams before any handler sees it (a notification with one is dropped).
- Only the LSP writer writes to the real stdout: at start the descriptors 0 and 1 are duplicated
  for the transport, then 1 points at stderr and 0 at /dev/null, so a print, a library's or a C
  extension's write, or a child process that inherits them, cannot corrupt the stream or eat
  the editor's messages.
- ``exit`` ends the process with 1 when no ``shutdown`` came first (LSP 3.17, ``exit``).

Each message's arrival goes to its handler in ``arrival`` (a context variable, copied by pygls
into the handler's context), so the completion cap can count from it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
import threading
import time
from typing import BinaryIO

from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from .framing import MAX_BODY, Frame, FrameReader
from .protocol import INVALID_PARAMS, INVALID_REQUEST, CompanionProtocol, valid_id

log = logging.getLogger(__name__)
BACKLOG_FRAMES = 256
arrival: contextvars.ContextVar[float] = contextvars.ContextVar("arrival")


def arrived() -> float:
    """When the message being handled began to arrive (``time.monotonic``), or now."""
    return arrival.get(time.monotonic())


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


class Backlog:
    """Frames read but not yet dispatched: the reader thread waits while there are
    ``BACKLOG_FRAMES`` of them or ``MAX_BODY`` bytes of bodies (one larger body passes alone)."""

    def __init__(self) -> None:
        self._room = threading.Condition()
        self._frames = 0
        self._bytes = 0

    def wait_for_room(self) -> None:
        with self._room:
            self._room.wait_for(lambda: self._frames < BACKLOG_FRAMES and self._bytes < MAX_BODY)

    def add(self, frame: Frame) -> None:
        with self._room:
            self._frames += 1
            self._bytes += frame.size

    def done(self, frame: Frame) -> None:
        with self._room:
            self._frames -= 1
            self._bytes -= frame.size
            self._room.notify()


def pump(reader: FrameReader, backlog: Backlog, queue: asyncio.Queue[Frame | None],
         loop: asyncio.AbstractEventLoop) -> None:
    """The reader thread: read, parse and queue each frame for the loop; None at the end."""
    frame: Frame | None = Frame(0.0)
    try:
        while frame is not None:
            backlog.wait_for_room()
            frame = reader.next()
            if frame is not None:
                backlog.add(frame)
            loop.call_soon_threadsafe(queue.put_nowait, frame)
    except RuntimeError:  # the loop is closed: the server is exiting
        pass
    except Exception:
        log.exception("the message reader failed")
        loop.call_soon_threadsafe(queue.put_nowait, None)


async def serve(protocol: CompanionProtocol, stream: BinaryIO) -> None:
    """Dispatch what the reader thread reads, in order, until the stream ends. One message per
    turn of the loop, as pygls did: each handler starts before the next message is dispatched
    (dispatching a burst at once started all their context threads together, which then took
    turns at the GIL: 2,000 pipelined completions were answered in 10 to 12 s instead of 4)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Frame | None] = asyncio.Queue()
    backlog = Backlog()
    reader = threading.Thread(target=pump, args=(FrameReader(stream), backlog, queue, loop),
                              name="lsp-reader", daemon=True)
    reader.start()
    while (frame := await queue.get()) is not None:
        backlog.done(frame)
        dispatch(protocol, frame)
        await asyncio.sleep(0)


def private_stdio() -> tuple[BinaryIO, BinaryIO]:
    """The process's stdin and stdout for the transport alone: duplicated (not inherited by
    children), then descriptor 1 pointed at stderr and 0 at /dev/null for everything else."""
    stdin, stdout = os.fdopen(os.dup(0), "rb", buffering=1 << 16), os.fdopen(os.dup(1), "wb")
    sys.stdout.flush()
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return stdin, stdout


def serve_stdio(server: LanguageServer, stdin: BinaryIO | None, stdout: BinaryIO | None) -> None:
    """pygls's ``start_io`` (``_start_io_async``) with this module's reader."""
    protocol = server.protocol
    assert isinstance(protocol, CompanionProtocol)
    if stdin is None and stdout is None:
        stdin, stdout = private_stdio()
    server._stop_event = threading.Event()
    protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    code: str | int | None = 0
    try:
        asyncio.run(serve(protocol, stdin or sys.stdin.buffer))
    except BrokenPipeError:
        log.error("the connection to the client is lost; shutting down")
    except SystemExit as exc:  # pygls's exit handler: 0 after shutdown, else 1
        code = exc.code
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
    if code:
        raise SystemExit(code)
