"""LSP base-protocol framing, read with bounds: every message, or what is wrong with it, as a Frame.

pygls 2.1.1's reader (``pygls/io_.py`` ``run_async``) trusts the wire: ``Content-Length:
1000000000000`` makes ``stdin.read(n)`` allocate n bytes up front (``MemoryError`` ended the
server), a header line without a newline is read whole, a body nested 5,000 deep raises
``RecursionError`` in ``json.loads`` that nobody answers (the client waits forever). Here:

- a header line is read at most ``MAX_LINE`` bytes at a time. Field names are case-insensitive
  (RFC 9110 section 5.1; vscode-jsonrpc lower-cases them) and the length may carry leading zeros;
  a header block whose ``Content-Length`` is missing or not a decimal number (``-5``, ``+5``,
  ``0x10``), or which a line that is no header field breaks (no blank line before the body), is
  answered with Parse error, id null: the body cannot be delimited, and the client would wait
  forever. One such answer per stretch between good messages, so garbage cannot make a flood;
- a body over ``MAX_BODY`` (64 MiB, as much as an answer from the engine may hold,
  docs/security.md) is not read: it is answered with Invalid Request and the reader looks for the
  next ``Content-Length`` (the claimed body's bytes, if they come, are skipped as garbage; a header
  glued to them is still found);
- the body must be UTF-8 (a BOM is allowed), the only charset LSP defines, whatever a
  ``Content-Type`` says: ``json.loads`` on bytes would also take UTF-16 and encoded surrogates.
  A string escape for a lone surrogate (``"\\ud800"``, which JSON allows and JavaScript editors
  write for a broken character) becomes U+FFFD, the same one UTF-16 unit: such a string could
  not be encoded again, and the chat answered it with an internal error;
- a body that ``json.loads`` refuses (not JSON, not UTF-8, nested past Python's recursion limit)
  is answered with Parse error (-32700), under the request's id when it can be read from the
  body's first top-level members, else id null (JSON-RPC 2.0 section 5.1);
- a number that is not finite (``Infinity``, ``NaN``, ``1e400``: RFC 8259 section 6 has none,
  Python's json accepts them) is flagged, for transport.py to answer InvalidParams.

Specification: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#baseProtocol
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from .protocol import INVALID_REQUEST, PARSE_ERROR, valid_id

log = logging.getLogger(__name__)
MAX_LINE = 8 * 1024
MAX_BODY = 64 * 1024 * 1024
_TAIL = 128  # bytes of an unterminated line kept, to find a header glued to garbage
_NAME = b"content-length:"
_FIELD = re.compile(rb"[!#-'*+.0-9A-Za-z^_`|~-]+:[^\r\n]*\r?\n\Z")  # RFC 9110 token ":" value
_MEMBER = re.compile(
    rb'\s*("(?:[^"\\]|\\.){0,64}")\s*:\s*("(?:[^"\\]|\\.){0,256}"|-?\d{1,19}|true|false|null)\s*([,}])'
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE = re.compile("[\ud800-\udfff]")  # json joins escaped pairs: a surrogate left in a str is lone


@dataclass
class Frame:
    started: float  # time.monotonic() at its first header line
    data: Any = None  # the parsed body
    error: tuple[int, str] | None = None  # (code, message) to answer instead
    msg_id: int | str | None = None  # the id to answer an error under
    not_finite: bool = False  # the body holds Infinity, NaN or a float beyond double range
    size: int = 0  # the body's bytes (transport.py bounds what is read ahead by it)


class FrameReader:
    """Reads and parses one message at a time from a blocking binary stream (in a thread).

    The header state lives on the reader so that a broken header block can be answered at once
    and the reading go on where it stopped (a header glued to the line that broke the block)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._started: float | None = None  # the block's first line
        self._fields = 0  # header fields seen in this block
        self._length: int | None = None  # its valid Content-Length
        self._problem = ""  # what is wrong with it
        self._tail = b""
        self._told = False  # a framing error was answered since the last good message

    def next(self) -> Frame | None:
        """The next message, or None at the end of the stream."""
        header = self._header()
        if header is None or isinstance(header, Frame):
            return header
        started, length = header
        if length > MAX_BODY:
            log.warning("a message of %d bytes is over the %d-byte limit: skipped", length, MAX_BODY)
            self._told = True  # the skipped body's lines make no further answers
            return Frame(started, error=(INVALID_REQUEST, f"message of {length} bytes is over the limit of {MAX_BODY}"))
        body = self._stream.read(length) if length else b""
        if len(body) < length:
            return None
        self._told = False
        return decode(started, body)

    def _header(self) -> tuple[float, int] | Frame | None:
        """Header lines up to the blank line after a valid ``Content-Length``: (arrival, length);
        or a Frame answering a broken header block; None at the end of the stream."""
        while True:
            line = self._stream.readline(MAX_LINE)
            if not line:
                return None
            self._started = self._started or time.monotonic()
            whole = line.endswith(b"\n")
            if whole and not line.strip() and not self._tail:
                if self._length is not None:
                    done = (self._started, self._length)
                    self._start_block()
                    return done
                broken = self._broken("a header without a valid Content-Length") if self._fields else None
                self._start_block()
            else:
                broken = self._field(line, whole)
            if broken is not None:
                return broken

    def _field(self, line: bytes, whole: bool) -> Frame | None:
        """Take one non-blank line: a header field, or garbage that breaks the block in progress
        (a ``Content-Length`` glued to the garbage's end starts the next block)."""
        clean = whole and not self._tail and _FIELD.match(line) is not None
        text = self._tail + line
        self._tail = b"" if whole else text[-_TAIL:]
        broken = None if clean or not self._fields else self._broken("a line that is not a header field")
        if clean:
            at = 0 if line[: len(_NAME)].lower() == _NAME else -1
            self._fields += 1
        else:
            self._start_block()
            at = text.lower().rfind(_NAME) if whole else -1
            self._fields += at >= 0
        if at >= 0:
            self._started = self._started or time.monotonic()
            self._length = content_length(text[at + len(_NAME) :])
            shown = text[at:].strip()[:60].decode("ascii", "backslashreplace")
            self._problem = "" if self._length is not None else f"invalid {shown!r}"
        return broken

    def _start_block(self) -> None:
        self._started, self._fields, self._length, self._problem = None, 0, None, ""

    def _broken(self, why: str) -> Frame | None:
        """A Parse error for the broken block (id null: its body cannot be found), once a stretch."""
        started, why = self._started or time.monotonic(), self._problem or why
        if self._told:
            return None
        self._told = True
        log.warning("unreadable message header: %s", why)
        return Frame(started, error=(PARSE_ERROR, f"Parse error: {why}"))


def content_length(value: bytes) -> int | None:
    """A Content-Length value: decimal digits (leading zeros allowed), else None. Past 20 digits
    it is only "too large" (Python's int() refuses strings over 4,300 digits)."""
    value = value.strip(b" \t\r\n")
    if not value.isdigit():
        return None
    digits = value.lstrip(b"0") or b"0"
    return int(digits) if len(digits) <= 20 else 10**20


def decode(started: float, body: bytes) -> Frame:
    """Parse a body; a refused one keeps the id its first top-level members name, if any."""
    not_finite = False

    def number(text: str) -> float:
        nonlocal not_finite
        value = float(text)
        not_finite = not_finite or not math.isfinite(value)
        return value

    try:
        text = body.decode("utf-8-sig")
        data = json.loads(text, parse_float=number, parse_constant=number)
    except (ValueError, RecursionError, MemoryError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            detail = f"the body is not UTF-8 (byte {exc.start})"
        else:
            detail = "nested too deep" if isinstance(exc, RecursionError) else str(exc)[:200] or type(exc).__name__
        return Frame(started, error=(PARSE_ERROR, f"Parse error: {detail}"), msg_id=recover_id(body), size=len(body))
    if _SURROGATE_ESCAPE.search(text) is not None:
        data = without_lone_surrogates(data)
    return Frame(started, data=data, not_finite=not_finite, size=len(body))


def without_lone_surrogates(data: Any) -> Any:
    """Every string of a parsed body with its lone surrogates as U+FFFD (in place, no recursion)."""
    if isinstance(data, str):
        return _LONE.sub("\ufffd", data)
    stack = [data] if isinstance(data, dict | list) else []
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and any(_LONE.search(key) for key in node):
            fixed = {_LONE.sub("\ufffd", key): value for key, value in node.items()}
            node.clear()
            node.update(fixed)
        for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(value, str) and _LONE.search(value) is not None:
                node[key] = _LONE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return data


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
