"""A clean shutdown over real stdio: every background task is cancelled and awaited by its owner
before anything it uses closes (review finding left from issue 21: the health's served-model and
family probes, the warm-up and the completion prefetches were left running at shutdown; the
health closed the backend's client under them, so they failed on it, reported the endpoint down
and started a new probe, and what was still pending at exit was only cut by the interpreter).

The server is driven into each path against the fake engine, each still running when
``shutdown`` arrives: a warm-up the engine streams slowly (completion/warm.py), a prefetch after an
accept that it streams slowly (completion/service.py), and the health's periodic probe hanging on
``/v1/models`` (backend/health.py, backend/served.py). By the time ``shutdown`` is answered the
engine has seen both streams closed (before the fix they ran on until ``exit`` cut the process);
then ``exit``: the process exits 0 within ``EXIT_BOUND_S``, nothing is logged as failed from
``shutdown`` on, and its stderr holds none of asyncio's warnings about tasks destroyed while
pending or coroutines never awaited. Health's own probes are checked one by one in
tests/unit/test_health_close.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.fake_backend import FakeBackend, Reply, Seen
from tests.lsp_session import (
    client_capabilities_for,
    inline_params,
    open_doc,
    options,
    server_command,
    type_text,
    wait_for,
)

ACCEPT = "vllmCompanion.didAcceptCompletion"
SLOW = Reply(chunks=[""] * 2400, delay_s=0.05)  # 2 minutes of empty deltas; a hang-up is seen in 50 ms
CLOSED_BOUND_S = 1.0  # from the shutdown's answer to the engine seeing every stream closed
EXIT_BOUND_S = 10.0  # shutdown + exit to the process gone (the engine's holds are minutes)
SHUTDOWN_MARK = "shutdown: ending the background work"  # lsp/lifecycle.py logs it first
WARNINGS = ("Task was destroyed but it is pending", "was never awaited", "Task exception was never retrieved")
CODE = "import os\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\nx = █\n"


@contextlib.asynccontextmanager
async def server_with_stderr(init: dict[str, Any]) -> AsyncIterator[tuple[LanguageClient, list[bytes]]]:
    """The real server over stdio (as tests/lsp_session.py starts it), its stderr kept here
    instead of forwarded, so the test can read what Python said at exit."""
    client: LanguageClient = await ClientServerConfig(server_command=server_command()).start()  # type: ignore[assignment]
    assert client._stderr_forwarder is not None and client._server is not None and client._server.stderr is not None
    client._stderr_forwarder.cancel()
    lines: list[bytes] = []
    stderr = client._server.stderr

    async def keep() -> None:
        while line := await stderr.readline():
            lines.append(line)

    reader = asyncio.ensure_future(keep())
    caps = client_capabilities_for("visual-studio-code")
    try:
        await client.initialize_session(types.InitializeParams(capabilities=caps, initialization_options=init))
        yield client, lines
    finally:
        if client._server.returncode is None:
            client._server.kill()  # the test failed before its exit: never leave it behind
        await asyncio.wait_for(reader, 10)
        await client.stop()


async def exercise(client: LanguageClient, backend: FakeBackend, held: str) -> list[Seen]:
    """Warm-up, completion, accept (so a prefetch), a second document's warm-up, the health's
    probe hanging on ``/v1/models``; ``held``: which stream is still running at the end (a
    real completion ends any warm-up, and a warm-up waits while a completion runs: never both)."""
    backend.script = [Reply(chunks=["compute(1)"]), SLOW if held == "prefetch" else Reply(chunks=[" + 2"])]
    uri, pos = open_doc(client, CODE)
    await wait_for(lambda: len(backend.warms) == 1)
    result = await client.text_document_inline_completion_async(inline_params(uri, pos))
    assert isinstance(result, types.InlineCompletionList)
    (item,) = result.items
    assert item.command is not None
    type_text(client, uri, 2, pos, "compute(1)")
    await client.workspace_execute_command_async(types.ExecuteCommandParams(command=ACCEPT,
                                                                            arguments=item.command.arguments))
    await wait_for(lambda: len(backend.generation_requests()) == 2)  # the prefetch
    if held == "warm-up":
        await wait_for(lambda: backend.generation_requests()[1].ended is not None)
        backend.warm_reply = SLOW
        open_doc(client, CODE.replace("x = ", "y = "))
        await wait_for(lambda: len(backend.warms) == 2)
    backend.models_hang = True
    models = backend.models_asked
    await wait_for(lambda: backend.models_asked > models)  # the health's periodic probe, hanging
    return backend.warms[-1:] if held == "warm-up" else backend.generation_requests()[-1:]


@pytest.mark.parametrize("held", ["prefetch", "warm-up"])
async def test_shutdown_ends_every_background_task_before_it_answers(backend: FakeBackend, held: str) -> None:
    init = options(backend.url, timeoutMs=30000)
    init["backend"]["healthIntervalS"] = 0.2
    async with server_with_stderr(init) as (client, stderr):
        (stream,) = await exercise(client, backend, held)
        assert stream.ended is None  # still streaming
        started = time.monotonic()
        await asyncio.wait_for(client.shutdown_async(None), EXIT_BOUND_S)
        await wait_for(lambda: stream.ended is not None, CLOSED_BOUND_S)  # closed by the shutdown, not the exit
        assert stream.client_closed
        client.exit(None)
        assert client._server is not None
        code = await asyncio.wait_for(client._server.wait(), EXIT_BOUND_S - (time.monotonic() - started))
    text = b"".join(stderr).decode(errors="replace")
    assert code == 0, text[-4000:]
    assert not [w for w in WARNINGS if w in text], text[-6000:]
    _, mark, after = text.partition(SHUTDOWN_MARK)
    assert mark, text[-4000:]
    failed = [line for line in after.splitlines() if " WARNING " in line or " ERROR " in line]
    assert not failed, failed  # e.g. "backend: unavailable: cannot reach the engine (ReadError)"
