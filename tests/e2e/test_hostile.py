"""Hostile and slow backends: every answer in bounded time, memory and CPU (issue 9, points
11-16), over real stdio against the fake engine on a real socket."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import (
    as_dict,
    capture_partials,
    chat_request,
    inline,
    inline_params,
    open_doc,
    options,
    raw_request,
    session,
    wait_for,
)


def capped(url: str, timeout_ms: int = 1000, **completion: Any) -> dict[str, Any]:
    opts = options(url, timeoutMs=timeout_ms, **completion)
    opts["backend"].update(firstTokenTimeoutS=1.0, totalTimeoutS=30)
    return opts


async def timed(coro: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    result = await coro
    return result, time.monotonic() - t0


async def test_the_cap_runs_from_arrival_and_covers_the_debounce(backend: FakeBackend) -> None:
    """11. A hung engine: the automatic request is answered at the cap, not cap + debounce."""
    backend.script = [Reply(hang=True)]
    async with session(capped(backend.url, 1000, debounceMs=400)) as client:
        uri, pos = open_doc(client, "x = █\n")
        await inline(client, uri, pos)  # the probes are done: only the generation hangs now
        backend.script = [Reply(hang=True)]
        result, took = await timed(client.text_document_inline_completion_async(inline_params(uri, pos, True)))
        assert result is None and took < 1.25


async def test_a_trickling_tokenize_blocks_nothing(backend: FakeBackend) -> None:
    """11. /tokenize sending a byte a second: the FIM check gives up; completions are answered
    within the cap from the first one on, and work once the check is skipped."""
    backend.tokenize_trickle_s = 1.0
    backend.default = Reply(chunks=["fine"])
    async with session(capped(backend.url, 1000)) as client:
        uri, pos = open_doc(client, "x = █\n")
        answers = []
        t0 = time.monotonic()
        for _ in range(4):
            answer, took = await timed(inline(client, uri, pos))
            assert took < 1.3
            answers.append(answer)
        await wait_for(lambda: False if not client.statuses else True)
        answer = None
        while answer is None and time.monotonic() - t0 < 15:
            answer = await inline(client, uri, pos)
        assert answer == "fine"


async def test_a_hung_endpoint_is_left_alone_and_watched_for_recovery(backend: FakeBackend) -> None:
    """11. /v1/models hangs: the first request costs its cap, then requests answer at once while
    a background probe watches; when the endpoint answers again, so do completions."""
    backend.models_hang = True
    backend.default = Reply(chunks=["back"])
    async with session(capped(backend.url, 1000)) as client:
        uri, pos = open_doc(client, "x = █\n")
        first, took = await timed(inline(client, uri, pos))
        assert first is None and took < 1.3
        await wait_for(lambda: any(as_dict(s).get("state") == "unavailable" for s in client.statuses), timeout=5)
        for _ in range(5):
            answer, took = await timed(inline(client, uri, pos))
            assert answer is None and took < 0.2
        backend.models_hang = False
        await wait_for(lambda: as_dict(client.statuses[-1]).get("state") == "ready", timeout=20)
        assert await inline(client, uri, pos) == "back"


async def test_a_broken_document_does_not_count_against_the_backend(backend: FakeBackend) -> None:
    """12. A lone surrogate makes one request fail; the next, valid one still gets its answer."""
    backend.default = Reply(chunks=["ok"])
    async with session(capped(backend.url, 2000)) as client:
        text = "s = '\ud800'\nx = "
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri="file:///work/bad.py", language_id="python", version=1, text=text)))
        pos = types.Position(line=1, character=4)
        await inline(client, "file:///work/bad.py", pos)
        uri, good = open_doc(client, "y = █\n")
        assert await inline(client, uri, good) == "ok"
        assert all(as_dict(s).get("state") != "error" for s in client.statuses)


async def test_an_endless_event_line_is_cut_with_bounded_memory(backend: FakeBackend) -> None:
    """13. An SSE line that never ends: the server stops reading at 1 MiB; its memory stays put."""
    backend.script = [Reply(endless_line=True)]
    async with session(capped(backend.url, 10_000)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) is None
        pid = client._server.pid  # type: ignore[attr-defined]
        peak_kb = int(next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines()  # noqa: ASYNC240
                           if x.startswith("VmHWM")).split()[1])
        assert peak_kb < 250_000
        await wait_for(lambda: backend.requests[-1].ended is not None, timeout=5)
        assert backend.requests[-1].chunks_sent < 200  # 64 KiB each: we left after about 1 MiB


async def test_max_tokens_is_enforced_on_our_side(backend: FakeBackend) -> None:
    """13. A server that ignores max_tokens is cut at max_tokens (plus a little slack)."""
    backend.script = [Reply(chunks=["a "] * 5000, delay_s=0.001)]
    async with session(capped(backend.url, 20_000, maxTokens=32, maxLines=500)) as client:
        uri, pos = open_doc(client, "x = █\n")
        answer = await inline(client, uri, pos)
        await wait_for(lambda: backend.requests[-1].ended is not None, timeout=10)
        assert backend.requests[-1].client_closed
        assert backend.requests[-1].chunks_sent < 32 + 40
        assert answer is None or len(answer) < 200


async def test_retry_after_is_honoured_and_shown(backend: FakeBackend) -> None:
    """14. 429 with Retry-After: 30: nothing is sent for the next requests, the status says why."""
    backend.script = [Reply(status=429, error_body="slow down", headers={"Retry-After": "30"})]
    async with session(capped(backend.url, 1000)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) is None
        sent = len(backend.generation_requests())
        for _ in range(10):
            assert await inline(client, uri, pos) is None
        assert len(backend.generation_requests()) == sent == 1
        assert any("wait 30 s" in as_dict(s).get("message", "") for s in client.statuses)


async def test_backend_values_are_validated_and_errors_carry_no_traceback(backend: FakeBackend) -> None:
    """15. max_model_len Infinity is ignored (the default context is used); an internal error
    answers with a one-line message, no traceback."""
    backend.max_model_len = float("inf")  # type: ignore[assignment]
    backend.default = Reply(chunks=["fine"])
    async with session(capped(backend.url, 2000)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "fine"
        try:
            await raw_request(client, "vllmCompanion/chat", {"messages": [{"role": "user", "content": 5}]})
        except JsonRpcException as exc:
            assert exc.data is None and "Traceback" not in exc.message
        else:
            raise AssertionError("invalid params were accepted")


def test_an_internal_error_reply_has_no_traceback() -> None:
    """15. pygls puts the traceback in an internal error's data: it never leaves the server."""
    import sys

    from vllm_companion.lsp.protocol import CompanionProtocol

    sent: list[Any] = []
    proto = CompanionProtocol.__new__(CompanionProtocol)
    proto._send_data = sent.append  # type: ignore[method-assign]
    try:
        raise RuntimeError("boom in /home/user/secret/path.py")
    except RuntimeError:
        error = JsonRpcInternalError.of(sys.exc_info()).to_response_error()
    assert error.data is not None
    proto._send_response("1", error=error)
    assert sent[0].error.data is None and "boom" in sent[0].error.message


async def test_chat_concurrency_cap_survives_a_settings_change(backend: FakeBackend) -> None:
    """16. maxConcurrent 1, then didChangeConfiguration twice: still one stream at a time."""
    backend.default = Reply(chunks=[f"w{i} " for i in range(40)], delay_s=0.05)
    async with session(options(backend.url) | {"chat": {"maxConcurrent": 1}}) as client:
        capture_partials(client)
        ask = {"messages": [{"role": "user", "content": "hi"}], "maxTokens": 64}
        first = asyncio.ensure_future(chat_request(client, ask, 30))
        await wait_for(lambda: len(backend.generation_requests()) == 1)
        for _ in range(2):
            client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
                settings={"vllmCompanion": {"chat": {"maxConcurrent": 1}, "backend": {"endpoint": backend.url}}}))
        others = [asyncio.ensure_future(chat_request(client, ask, 30)) for _ in range(2)]
        await asyncio.gather(first, *others)
        spans = sorted((r.started, r.ended or 0) for r in backend.generation_requests())
        assert len(spans) == 3
        assert all(spans[i][1] <= spans[i + 1][0] + 0.02 for i in range(2)), spans
