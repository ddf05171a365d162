"""The LSP edge: every message a client can write gets an answer, and none stops the server
(issue 19, the low items: non-finite numbers, deep nesting, garbage framing, the completion cap;
then an attack on the transport itself: header forms, ids, the lifecycle, lone surrogates,
stray writes to stdout, a burst of requests against the cap).

Malformed messages are written as bytes to the real server's stdin (``RawServer``: Content-Length
framing by hand, replies read with a timeout, anything on stdout that is not a message recorded);
the cap is measured on the client's side of a real stdio session against the fake engine hanging
on a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, inline_params, open_doc, options, server_command, session

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, SERVER_NOT_INITIALIZED = -32700, -32600, -32602, -32002
URI = "file:///work/edge.py"
INLINE = "textDocument/inlineCompletion"
RANGE = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}


class RawServer:
    """``vllm-companion lsp`` driven with raw bytes; replies collected by id (with the time each
    came), and whatever on its stdout is not a well-framed message in ``garbage``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.replies: list[dict[str, Any]] = []
        self.garbage: list[bytes] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while (line := await out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                elif not line.lower().startswith(b"content-type:"):
                    self.garbage.append(line)
            if not line:
                return
            if length is None:
                self.garbage.append(line)
                continue
            body = await out.readexactly(length)
            try:
                self.replies.append({**json.loads(body), "_at": time.monotonic()})
            except ValueError:
                self.garbage.append(body)

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
async def raw_server(
    backend: FakeBackend, tmp_path: Path, initialize: bool = True, env: dict[str, str] | None = None, **completion: Any
) -> AsyncIterator[RawServer]:
    with log_file(tmp_path) as log:
        proc = await asyncio.create_subprocess_exec(
            *server_command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
            env={**os.environ, **(env or {})},
        )
        server = RawServer(proc)
        try:
            if initialize:
                await start(server, backend, **completion)
            yield server
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            server._reader.cancel()


async def start(server: RawServer, backend: FakeBackend, **completion: Any) -> None:
    """initialize, initialized, and one document open."""
    init = {"capabilities": {}, "initializationOptions": options(backend.url, **completion), "processId": None}
    assert "result" in await server.request(0, "initialize", init, timeout=60)
    server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    open_text(server, URI, "def f(x):\n    return x\n")


def open_text(server: RawServer, uri: str, text: str) -> None:
    item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}})


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


def framed(header: bytes, body: bytes) -> bytes:
    return header.replace(b"#", b"%d" % len(body)) + body


def message(msg_id: Any, method: str = "textDocument/codeAction", params: Any = None) -> bytes:
    body = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or code_action(RANGE)}
    return json.dumps(body).encode()


def at_cursor(uri: str, line: int, character: int) -> dict[str, Any]:
    position = {"line": line, "character": character}
    return {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}}


async def test_a_content_length_that_is_no_number_is_answered_not_dropped(backend: FakeBackend, tmp_path: Path) -> None:
    """``-5``, ``+N``, hex, words, no Content-Length at all: the body cannot be delimited, and the
    message was dropped without a word (the client waited forever). Now a Parse error, id null,
    and the next message is read."""
    body = message(1)
    headers = [b"Content-Length: -5\r\n\r\n", b"Content-Length: +#\r\n\r\n", b"Content-Length: 0x1f\r\n\r\n",
               b"Content-Length: many\r\n\r\n", b"Content-Type: application/vscode-jsonrpc\r\n\r\n"]
    async with raw_server(backend, tmp_path) as server:
        for header in headers:
            server.write(framed(header, body) + b"\r\n")
            reply = await server.answer(None)
            assert reply["error"]["code"] == PARSE_ERROR and "Content-Length" in reply["error"]["message"], header
            await server.still_serves()
        assert not any(r.get("id") == 1 for r in server.replies)  # its id was never read


async def test_header_names_in_any_case_and_lengths_with_leading_zeros_are_read(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """Field names are case-insensitive (RFC 9110 5.1; vscode-jsonrpc lower-cases them): a client
    writing ``content-length`` got no answer to anything. ``000…0N`` is a length too."""
    async with raw_server(backend, tmp_path) as server:
        for n, header in enumerate([b"content-length: #\r\n\r\n", b"CONTENT-LENGTH:#\r\n\r\n",
                                    b"Content-Length: " + b"0" * 60 + b"#\r\n\r\n", b"Content-Length: #\n\n"]):
            server.write(framed(header, message(n)))
            assert (await server.answer(n)).get("result"), header


async def test_a_header_without_its_blank_line_is_answered_and_the_next_message_read(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """The blank line is missing: the body runs into the next header. That message was dropped
    without a word; now it gets a Parse error (id null) and the next one its answer."""
    async with raw_server(backend, tmp_path) as server:
        server.write(framed(b"Content-Length: #\r\n", message(1)))
        await server.still_serves()
        assert (await server.answer(None))["error"]["code"] == PARSE_ERROR


async def test_ids_that_are_not_strings_or_integers_are_invalid_requests(backend: FakeBackend, tmp_path: Path) -> None:
    """LSP ids are integers or strings. ``1.5``, ``true`` and ``null`` were answered under that
    id; ``{}`` and ``[]`` (unhashable in pygls's table) got no answer at all."""
    async with raw_server(backend, tmp_path) as server:
        for value in ["1.5", "2.0", "true", "null", "{}", "[]"]:
            server.send(message("ID").replace(b'"ID"', value.encode()))
            reply = await server.answer(None)
            assert reply["error"]["code"] == INVALID_REQUEST and "id" in reply["error"]["message"], value
        for big in [2**70, "x" * 100_000]:  # integers and strings are ids, however large
            assert (await server.request(big, "textDocument/codeAction", code_action(RANGE))).get("result")
        await server.still_serves()


async def test_a_notification_sent_with_an_id_is_answered_and_not_run(backend: FakeBackend, tmp_path: Path) -> None:
    """``$/cancelRequest`` or ``textDocument/didClose`` sent as a request (with an id) ran as a
    notification and the request was never answered."""
    async with raw_server(backend, tmp_path) as server:
        reply = await server.request(5, "$/cancelRequest", {"id": 4})
        assert reply["error"]["code"] == INVALID_REQUEST and "notification" in reply["error"]["message"]
        reply = await server.request(6, "textDocument/didClose", {"textDocument": {"uri": URI}})
        assert reply["error"]["code"] == INVALID_REQUEST
        await server.still_serves()


async def test_the_lifecycle_answers_every_request(backend: FakeBackend, tmp_path: Path) -> None:
    """Before ``initialize`` a request is -32002 (it ran on a server without settings); after
    ``shutdown`` it is Invalid Request (pygls dropped it: the client waited forever). ``exit`` then
    ends the process with 0, with stdin still open."""
    async with raw_server(backend, tmp_path, initialize=False) as server:
        reply = await server.request(1, "textDocument/codeAction", code_action(RANGE))
        assert reply["error"]["code"] == SERVER_NOT_INITIALIZED
        await start(server, backend)
        await server.still_serves()
        assert "result" in await server.request(2, "shutdown", None)
        for msg_id, method in [(3, "textDocument/codeAction"), (4, "shutdown")]:
            reply = await server.request(msg_id, method, code_action(RANGE) if msg_id == 3 else None)
            assert reply["error"]["code"] == INVALID_REQUEST and "shutting down" in reply["error"]["message"]
        server.send({"jsonrpc": "2.0", "method": "exit"})
        assert await asyncio.wait_for(server.proc.wait(), 10) == 0


async def test_exit_without_shutdown_ends_with_code_1(backend: FakeBackend, tmp_path: Path) -> None:
    """LSP 3.17 ``exit``: 1 when no shutdown came first (it was 0: a crash looked like a clean stop)."""
    async with raw_server(backend, tmp_path) as server:
        server.send({"jsonrpc": "2.0", "method": "exit"})
        assert await asyncio.wait_for(server.proc.wait(), 10) == 1


async def test_a_lone_surrogate_escape_cannot_break_chat(backend: FakeBackend, tmp_path: Path) -> None:
    """``"\\ud800"`` is valid JSON (JavaScript editors write it for a broken character): the chat
    answered it with an internal UnicodeEncodeError, since such a string cannot be encoded. It
    becomes U+FFFD; the same bytes as UTF-8 (encoded surrogates) are not UTF-8: Parse error."""
    backend.default = Reply(chunks=["fine"])
    async with raw_server(backend, tmp_path) as server:
        open_text(server, "file:///work/broken.py", "x = '\ud800'\n")
        selection = {"uri": "file:///work/broken.py", "range": RANGE}
        params = {"messages": [{"role": "user", "content": "why \udfff?"}], "context": {"selection": selection}}
        reply = await server.request(1, "vllmCompanion/chat", params, timeout=10)
        assert "result" in reply, reply
        sent = json.dumps(backend.generation_requests()[-1].body, ensure_ascii=False)
        assert "why \ufffd?" in sent and "x = '\ufffd'" in sent
        raw = json.loads(message(2, "vllmCompanion/chat", params))
        server.send(json.dumps(raw, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        reply = await server.answer(2)
        assert reply["error"]["code"] == PARSE_ERROR and "UTF-8" in reply["error"]["message"]
        await server.still_serves()


STRAY_WRITER = """
import os, sys, threading, time
def _stray():
    while not os.path.exists(os.environ["STRAY_TRIGGER"]):
        time.sleep(0.02)
    print("a library's print", flush=True)
    os.write(1, b"a C extension's write")
    os.system("echo a child process")
    open(os.environ["STRAY_TRIGGER"] + ".done", "w").close()
threading.Thread(target=_stray, daemon=True).start()
"""


async def test_a_stray_write_to_stdout_cannot_corrupt_the_stream(backend: FakeBackend, tmp_path: Path) -> None:
    """Anything but the transport writing to descriptor 1 (a print, a C extension, a child that
    inherits it) went into the LSP stream: the client read garbage and lost the next message.
    Such writes now go to stderr. (A ``sitecustomize`` plays the stray writer.)"""
    (tmp_path / "sitecustomize.py").write_text(STRAY_WRITER)
    trigger = tmp_path / "trigger"
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "STRAY_TRIGGER": str(trigger)}
    async with raw_server(backend, tmp_path, env=env) as server:
        await server.still_serves()
        trigger.touch()
        for _ in range(250):
            if (tmp_path / "trigger.done").exists():
                break
            await asyncio.sleep(0.02)
        await server.still_serves()
        assert server.garbage == []
    assert b"a library's print" in (tmp_path / "server.log").read_bytes()


async def test_a_burst_of_completions_is_answered_within_the_cap(backend: FakeBackend, tmp_path: Path) -> None:
    """30 inline completions written at once (30 documents, a hung engine, a 1 s cap). Read one
    at a time between turns of a busy loop, each was stamped late: the last answers reached the
    client up to 230 ms past the cap. Read ahead on the reader's thread, all arrive by the cap."""
    backend.default = Reply(chunks=["warm"])
    async with raw_server(backend, tmp_path, timeoutMs=1000) as server:
        uris = [f"file:///work/burst{n}.py" for n in range(30)]
        for n, uri in enumerate(uris):
            open_text(server, uri, f"import os{n}\ndef f(x):\n    return x\n" * 40)
        warm = at_cursor(uris[0], 1, 0)
        assert "result" in await server.request("warm", INLINE, warm)  # the probes are done
        backend.default = Reply(hang=True)
        inline_at = [message(100 + n, INLINE, at_cursor(uri, 2, 4)) for n, uri in enumerate(uris)]
        burst = b"".join(framed(b"Content-Length: #\r\n\r\n", body) for body in inline_at)
        t0 = time.monotonic()
        server.write(burst)
        answers = [await server.answer(100 + n, timeout=5) for n in range(30)]
        took = max(r["_at"] for r in answers) - t0
    assert all("result" in r for r in answers) and took <= 1.0, took


# A trivial request's wait behind a large custom message: pygls rebuilt the params (or a response's
# result) of every method lsprotocol has no type for as namedtuples, a new class per object, on the
# event loop (about 170 us an object: 10,000 chat messages held it 1.7 s). Now they stay as parsed.
NOOP_CAP_S = 0.2
SMALL_OBJECTS = [{"role": "user", "content": f"question {n}"} for n in range(10_000)]


async def noop_meanwhile(server: RawServer, body: dict[str, Any]) -> float:
    """Write ``body``, then a no-op request (a code action on an empty range: null); the seconds
    from the no-op's writing to its answer."""
    assert server.proc.stdin is not None
    server.send(body)
    await server.proc.stdin.drain()
    empty = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}
    t0 = time.monotonic()
    reply = await server.request("noop", "textDocument/codeAction", code_action(empty))
    assert "result" in reply, reply
    return float(reply["_at"]) - t0


async def test_a_chat_of_10000_messages_neither_holds_the_loop_nor_runs(backend: FakeBackend, tmp_path: Path) -> None:
    """10,000 small message objects: the no-op waited 1-2 s behind their namedtuples; now it is
    answered at once, and the chat is InvalidParams naming the bound (256 messages)."""
    async with raw_server(backend, tmp_path) as server:
        chat = {"jsonrpc": "2.0", "id": 1, "method": "vllmCompanion/chat", "params": {"messages": SMALL_OBJECTS}}
        took = await noop_meanwhile(server, chat)
        error = (await server.answer(1, timeout=30)).get("error") or {}
    assert took <= NOOP_CAP_S, took
    assert error.get("code") == INVALID_PARAMS and "at most 256" in error["message"], error
    assert backend.generation_requests() == []


async def test_a_10_mb_chat_neither_holds_the_loop_nor_goes_unanswered(backend: FakeBackend, tmp_path: Path) -> None:
    """10 MB of params (a question of 10 MB of code): their JSON round trip took 0.1-0.3 s of the
    loop before lsp/chat.py saw them. The no-op is answered meanwhile, the chat with the answer."""
    backend.default = Reply(chunks=["ok"])
    code = "    total = compute(total, item)\n" * 300_000
    async with raw_server(backend, tmp_path) as server:
        params = {"messages": [{"role": "user", "content": code}]}
        chat = {"jsonrpc": "2.0", "id": 1, "method": "vllmCompanion/chat", "params": params}
        took = await noop_meanwhile(server, chat)
        reply = await server.answer(1, timeout=30)
    assert took <= NOOP_CAP_S, took
    assert reply.get("result", {}).get("content") == "ok", reply


async def test_a_custom_notification_of_10000_objects_does_not_hold_the_loop(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """A notification's params are rebuilt as well, members it ignores included (here
    ``didChangeModel``'s), and nothing answers a notification to show it."""
    async with raw_server(backend, tmp_path) as server:
        params = {"chat": {"model": None}, "padding": SMALL_OBJECTS}
        took = await noop_meanwhile(server, {"jsonrpc": "2.0", "method": "vllmCompanion/didChangeModel",
                                             "params": params})
    assert took <= NOOP_CAP_S, took


async def test_a_response_to_no_request_with_10000_objects_does_not_hold_the_loop(
    backend: FakeBackend, tmp_path: Path
) -> None:
    """A response no typed request waits for (an id the server never sent) had its result rebuilt
    too, before pygls found nobody waits for it."""
    async with raw_server(backend, tmp_path) as server:
        took = await noop_meanwhile(server, {"jsonrpc": "2.0", "id": "stray", "result": {"items": SMALL_OBJECTS}})
        await server.still_serves()
    assert took <= NOOP_CAP_S, took


async def test_params_that_are_an_array_are_refused_without_copying_them(backend: FakeBackend, tmp_path: Path) -> None:
    """A top-level array of 1 M empty lists as params: lsp/chat.py's ``parse`` copied it item by
    item on the event loop before pydantic refused it (3 M: the no-op waited 4.5 s). Now every
    method that reads its params with ``parse`` refuses any params but an object, at once: the
    no-op waits no longer than behind the same lists under an ignored key (the JSON parse's)."""
    lists: list[Any] = [[] for _ in range(1_000_000)]
    methods = ("vllmCompanion/chat", "vllmCompanion/edit", "textDocument/copilotInlineEdit")
    async with raw_server(backend, tmp_path) as server:
        chat = {"jsonrpc": "2.0", "id": "control", "method": methods[0], "params": {"padding": lists, "messages": []}}
        control = await noop_meanwhile(server, chat)
        await server.answer("control", timeout=30)
        for n, method in enumerate(methods):
            took = await noop_meanwhile(server, {"jsonrpc": "2.0", "id": n, "method": method, "params": lists})
            error = (await server.answer(n, timeout=30)).get("error") or {}
            assert took <= control + NOOP_CAP_S, (method, took, control)
            assert error.get("code") == INVALID_PARAMS and "params must be an object" in error["message"], error
    assert backend.generation_requests() == []


async def test_an_edits_text_document_of_a_million_keys_is_not_copied(backend: FakeBackend, tmp_path: Path) -> None:
    """1.5 M keys in an edit's ``textDocument``: a ``dict[str, Any]`` field copied them all on the
    event loop (2 M: 0.6 s). Its typed model reads ``uri`` and ``version`` only: the no-op waits no
    longer than behind the same keys under a key the params ignore (the JSON parse, not ours)."""
    keys = {str(i): 0 for i in range(1_500_000)}
    edit = {"range": RANGE, "instruction": "x"}
    waits = []
    async with raw_server(backend, tmp_path) as server:
        for n, params in enumerate(({**edit, "padding": keys, "textDocument": {"uri": URI}},
                                    {**edit, "textDocument": {**keys, "uri": URI}})):
            waits.append(await noop_meanwhile(server, {"jsonrpc": "2.0", "id": n, "method": "vllmCompanion/edit",
                                                       "params": params}))
            await server.answer(n, timeout=30)
    assert waits[1] <= waits[0] + NOOP_CAP_S, waits
