"""The front's HTTP connections: what a client may hold before it has shown a key.

The front (engine/front.py) checks the key per request, but uvicorn spends memory, CPU, file
descriptors and log lines on a connection before any request exists. Measured on uvicorn 0.55
with httptools 0.9 (what ``http="auto"`` picks when vLLM is installed), with no key at all:

- one request head of tiny header lines (``a:\\r\\n`` x 10 M, 40 MB sent) took the front to 1.1 GB
  RSS, and one endless header value grew it without bound (httptools keeps no limit);
- 5,000 pipelined requests per write, never read, took it to 320 MB (httptools parses a whole
  read ahead, one queued request each);
- 600 idle connections, or one that sends a header byte every 2 s, were held forever (uvicorn arms
  its keep-alive timer only after a first response; any byte disarms it), and at 512 (uvicorn's
  ``limit_concurrency``) every keyed request got 503;
- every malformed request wrote a log line to an unbounded log file.

So the front speaks h11 (pure Python, uvicorn's own dependency, the same on every install; it
parses one pipelined request at a time and refuses duplicate lengths), and ``Http`` adds what
uvicorn lacks: a request head must be complete within ``HEAD_S`` and ``MAX_HEAD`` bytes (h11
bounds only an *incomplete* head: a complete one of 256 KiB in one read, 65,536 header lines,
cost 259 ms of parsing); what h11 accepts and httptools refused (``Content-Length`` with
``Transfer-Encoding``, where h11 lets chunked win; folded headers; bare LF), framings a proxy before
the front may read otherwise (request smuggling), is 400; at most ``MAX_CONNECTIONS`` connections
and ``MAX_PER_PEER`` from one address (loopback aside: a TLS proxy on this host is one peer for
everyone); and ``LogQuota`` bounds what clients can make it log. Tests: tests/adversarial/test_team.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_CONNECTIONS = 512  # beyond: closed at once, so idle sockets cannot take every file descriptor
MAX_PER_PEER = 64  # an editor keeps a handful; one host cannot take them all
HEAD_S = 10.0  # from the connection (or the first byte after a keep-alive wait) to a whole head
MAX_HEAD = 16 << 10  # the request line and headers: an editor's are under 1 KiB
KEEP_ALIVE_S = 5
STOP_S = 3  # on SIGTERM, answers in flight get this long: a client that never reads cannot hold the stop
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
# What h11 accepts and a proxy before the front may read otherwise (RFC 9112 6.1, 5.2, 2.2):
BARE_LF = re.compile(rb"(?<!\r)\n")
OBS_FOLD = re.compile(rb"\n[ \t]")
LENGTH = re.compile(rb"^content-length[ \t]*:", re.IGNORECASE | re.MULTILINE)
CHUNKED = re.compile(rb"^transfer-encoding[ \t]*:", re.IGNORECASE | re.MULTILINE)


class Http(H11Protocol):
    """uvicorn's h11 protocol with a deadline and a size for each request head, and caps on
    connections. A head is being read when h11 waits for a request (``IDLE``) or has received one
    whole (``DONE``: what comes next is the next request); a body or a response is not timed here
    (the front bounds bodies, httpx the engine)."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = self.client[0] if self.client else ""
        same = sum(1 for c in self.connections if isinstance(c, Http) and c.client and c.client[0] == peer)
        if len(self.connections) > MAX_CONNECTIONS or (same > MAX_PER_PEER and not _loopback(peer)):
            transport.abort()
            return
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.timeout_keep_alive_task is not None:  # the first bytes of the next request
            self._arm_head()
        if refusal := self._refusal(data):
            self.transport.write(refusal)
            self.transport.close()
            return
        super().data_received(data)

    def on_response_complete(self) -> None:
        if self._refusal(b""):  # a pipelined head, read while the last answer went out
            self.transport.close()
            return
        super().on_response_complete()

    def _refusal(self, data: bytes) -> bytes | None:
        """The answer to a request head (in h11's buffer plus ``data``) that h11 must not parse."""
        if self.conn.their_state not in (h11.IDLE, h11.DONE):
            return None  # a body is arriving
        buffered = self.conn.trailing_data[0] + data
        end = buffered.find(b"\r\n\r\n")
        head = buffered[: end if end >= 0 else len(buffered)]
        if len(head) > MAX_HEAD:
            return TOO_LARGE
        if BARE_LF.search(head) or OBS_FOLD.search(head) or (LENGTH.search(head) and CHUNKED.search(head)):
            return BAD
        return None

    def _arm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(HEAD_S, self._head_late)

    def _head_late(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()  # no request came, or not all of its head


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None  # "::" serves IPv4 too
    return (mapped or address).is_loopback


class LogQuota(logging.Filter):
    """At most ``limit`` records a minute reach the log (whose file nothing rotates), then one
    line saying how many were dropped: anyone who reaches the port can make uvicorn log."""

    def __init__(self, limit: int = 60) -> None:
        super().__init__()
        self.limit, self.window, self.count, self.dropped = limit, time.monotonic(), 0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.window >= 60:
            if self.dropped:
                record.msg = f"{record.msg} ({self.dropped} earlier log lines dropped)"
            self.window, self.count, self.dropped = now, 0, 0
        self.count += 1
        if self.count > self.limit:
            self.dropped += 1
        return self.count <= self.limit


def serve(app: Any, host: str, port: int) -> None:
    """Run ``app`` on ``host``:``port`` until SIGTERM/SIGINT, logging through the root handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(LogQuota())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    config = uvicorn.Config(app, host=host, port=port, http=Http, ws="none", lifespan="off", log_config=None,
                            log_level="warning", access_log=False, server_header=False, proxy_headers=False,
                            h11_max_incomplete_event_size=MAX_HEAD, timeout_keep_alive=KEEP_ALIVE_S,
                            limit_concurrency=MAX_CONNECTIONS + 1, timeout_graceful_shutdown=STOP_S)
    uvicorn.Server(config).run()
