"""The LSP edge: every message a client can write gets an answer, and none stops the server
(issue 19, the low items: non-finite numbers, deep nesting, garbage framing, the completion cap).

Malformed messages are written as bytes to the real server's stdin (``RawServer``: Content-Length
framing by hand, replies read with a timeout); the cap is measured on the client's side of a real
stdio session against the fake engine hanging on a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, inline_params, open_doc, options, server_command, session

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
URI = "file:///work/edge.py"
RANGE = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}


class RawServer:
    """``vllm-companion lsp`` driven with raw bytes; replies collected by id."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.replies: list[dict[str, Any]] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while (line := await out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            self.replies.append(json.loads(await out.readexactly(length)))

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def send(self, body: bytes | str | dict[str, Any]) -> None:
        raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        self.write(b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw))

    async def answer(self, msg_id: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The reply with this id (None: the next error reply with id null)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for reply in self.replies:
                if reply.get("id") == msg_id and ("error" in reply or "result" in reply):
                    self.replies.remove(reply)
                    return reply
            assert self.proc.returncode is None, f"the server exited ({self.proc.returncode})"
            await asyncio.sleep(0.02)
        raise AssertionError(f"no answer for id {msg_id!r} within {timeout} s")

    async def request(self, msg_id: Any, method: str, params: Any, timeout: float = 5.0) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return await self.answer(msg_id, timeout)

    async def still_serves(self) -> None:
        """A valid request after the garbage is answered: the server is alive and in sync."""
        reply = await self.request("alive", "textDocument/codeAction", code_action(RANGE))
        assert reply.get("result"), reply


def code_action(rng: Any) -> dict[str, Any]:
    return {"textDocument": {"uri": URI}, "range": rng, "context": {"diagnostics": []}}


def log_file(folder: Path) -> BinaryIO:
    return (folder / "server.log").open("wb")


@contextlib.asynccontextmanager
async def raw_server(backend: FakeBackend, tmp_path: Path) -> AsyncIterator[RawServer]:
    with log_file(tmp_path) as log:
        proc = await asyncio.create_subprocess_exec(
            *server_command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log
        )
        server = RawServer(proc)
        try:
            init = {"capabilities": {}, "initializationOptions": options(backend.url), "processId": None}
            assert "result" in await server.request(0, "initialize", init, timeout=60)
            server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
            text = "def f(x):\n    return x\n"
            item = {"uri": URI, "languageId": "python", "version": 1, "text": text}
            server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}})
            yield server
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            server._reader.cancel()


def bad_params(value: str) -> dict[str, str]:
    """Each request a client can send a range or position in, with ``value`` as a line number
    (spliced in as JSON text, so that ``Infinity`` and ``1e400`` go out as written)."""
    pos = {"line": "LINE", "character": 0}
    rng = {"start": pos, "end": {"line": 1, "character": 0}}
    doc = {"uri": URI}
    params = {
        "textDocument/inlineCompletion": {"textDocument": doc, "position": pos, "context": {"triggerKind": 1}},
        "textDocument/completion": {"textDocument": doc, "position": pos},
        "textDocument/codeAction": code_action(rng),
        "vllmCompanion/edit": {"textDocument": doc, "range": rng, "instruction": "x"},
        "vllmCompanion/chat": {"messages": [{"role": "user", "content": "x"}],
                               "context": {"selection": {"uri": URI, "range": rng}}},
        "workspace/executeCommand": {"command": "vllmCompanion.fix", "arguments": [URI, rng]},
    }
    return {method: json.dumps(p).replace('"LINE"', value) for method, p in params.items()}


def request_text(msg_id: int, method: str, params: str) -> str:
    return '{"jsonrpc": "2.0", "id": ' + str(msg_id) + ', "method": "' + method + '", "params": ' + params + "}"


async def test_a_non_finite_or_out_of_range_position_gets_invalid_params(backend: FakeBackend, tmp_path: Path) -> None:
    """Infinity in a range used to end in an internal error (int(inf): OverflowError in the
    edit's range parser); every request with such a number is InvalidParams, with a message."""
    values = ["Infinity", "-Infinity", "NaN", "1e400", "-1", str(2**64), '"one"', "null", "{}"]
    async with raw_server(backend, tmp_path) as server:
        for n, (value, method, params) in enumerate((v, *pair) for v in values for pair in bad_params(v).items()):
            server.send(request_text(n, method, params))
            reply = await server.answer(n)
            error = reply.get("error") or {}
            assert error.get("code") == INVALID_PARAMS, (value, method, reply)
            assert "data" not in error and 10 < len(error["message"]) <= 500 and "\n" not in error["message"]
        await server.still_serves()
    assert backend.generation_requests() == []


async def test_json_nested_5000_deep_is_answered_and_the_server_keeps_serving(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """json.loads raised RecursionError and nobody answered: the client waited forever."""
    deep = "[" * 5000 + "]" * 5000
    async with raw_server(backend, tmp_path) as server:
        server.send(request_text(77, "vllmCompanion/chat", deep))
        reply = await server.answer(77)
        assert reply["error"]["code"] == PARSE_ERROR and "deep" in reply["error"]["message"]
        server.send('{"jsonrpc": "2.0", "method": "vllmCompanion/chat", "params": ' + deep + ', "id": 78}')
        assert (await server.answer(None))["error"]["code"] == PARSE_ERROR  # the id comes after: null
        await server.still_serves()


async def test_a_body_that_is_not_json_is_answered_under_its_id_when_readable(
    backend: FakeBackend, tmp_path: Path
) -> None:
    async with raw_server(backend, tmp_path) as server:
        server.send(b'{"jsonrpc": "2.0", "id": 5, "method": "textDocument/codeAction", "params": {"trunc')
        assert (await server.answer(5))["error"]["code"] == PARSE_ERROR
        server.send(b'{"jsonrpc": "2.0", "params": {"id": 6}, "id": 7, "method": "x", \xff\xfe}')
        assert (await server.answer(None))["error"]["code"] == PARSE_ERROR  # a nested "id" is never taken
        for body in (b"[1, 2]", b"42", b'"text"', b'{"id": 9, "method": "x"}'):
            server.send(body)
            reply = await server.answer(9 if b"9" in body else None)
            assert reply["error"]["code"] == INVALID_REQUEST, (body, reply)
        server.send(b"")
        await server.still_serves()


async def test_a_huge_content_length_is_refused_without_reading_it(backend: FakeBackend, tmp_path: Path) -> None:
    """Content-Length: 10^12 made pygls allocate it (MemoryError: the server was gone)."""
    async with raw_server(backend, tmp_path) as server:
        server.write(b"Content-Length: 1000000000000\r\n\r\n")
        reply = await server.answer(None)
        assert reply["error"]["code"] == INVALID_REQUEST and "limit" in reply["error"]["message"]
        await server.still_serves()


async def test_garbage_between_messages_does_not_lose_the_next_one(backend: FakeBackend, tmp_path: Path) -> None:
    """A megabyte without a newline, then a header glued to it: read in bounded lines, the
    header found at the end of the junk (pygls wanted it alone on its line: no answer)."""
    async with raw_server(backend, tmp_path) as server:
        server.write(b"x" * 1_000_000)
        await server.still_serves()


async def test_a_hung_engine_is_answered_before_the_cap_reaches_the_client(backend: FakeBackend) -> None:
    """The generation hangs under the default 5 s cap: the answer reached the client at 5,004 ms
    (the cap ran to the answer's start). Now it leaves 50 ms early and arrives within the cap."""
    backend.script = [Reply(chunks=["warm"])]
    async with session(options(backend.url, timeoutMs=5000)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "warm"  # the probes are done: only the generation hangs
        backend.script = [Reply(hang=True)]
        uri, pos = open_doc(client, "y = █\n")
        t0 = time.monotonic()
        result = await client.text_document_inline_completion_async(inline_params(uri, pos, True))
        took = time.monotonic() - t0
    assert result is None and 4.8 < took <= 5.0, took


async def test_a_hung_probe_is_answered_before_the_cap_reaches_the_client(backend: FakeBackend) -> None:
    """/v1/models hangs on the first request: the probe is cut at the same point (it was cut
    50 ms after the cap)."""
    backend.models_hang = True
    async with session(options(backend.url, timeoutMs=1000)) as client:
        uri, pos = open_doc(client, "x = █\n")
        t0 = time.monotonic()
        result = await client.text_document_inline_completion_async(inline_params(uri, pos))
        took = time.monotonic() - t0
    assert result is None and 0.85 < took <= 1.0, took
