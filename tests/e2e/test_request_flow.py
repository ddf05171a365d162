"""Debounce, supersession, cancellation, cache, typed-ahead and in-flight reuse, end to end."""

from __future__ import annotations

import asyncio

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import (
    cancel,
    first_text,
    inline,
    open_doc,
    options,
    send_inline,
    session,
    type_text,
    wait_for,
)


async def test_burst_of_20_keystrokes_makes_at_most_two_backend_requests(backend: FakeBackend) -> None:
    def echo(body: dict[str, str]) -> Reply:
        return Reply(chunks=[f"# after {body['prompt'].split('<|fim_suffix|>')[0][-13:]!r}"])

    backend.default = echo
    async with session(options(backend.url, debounceMs=150)) as client:
        uri, pos = open_doc(client, "def f():\n    █\n")
        futures = []
        keys = "return value + 12345"
        assert len(keys) == 20
        for i, ch in enumerate(keys):
            pos = type_text(client, uri, i + 2, pos, ch)
            futures.append(send_inline(client, uri, pos, automatic=True)[1])
            await asyncio.sleep(0.03)
        results = [first_text(r) for r in await asyncio.wait_for(asyncio.gather(*futures), 10)]
    assert len(backend.generation_requests()) <= 2
    assert results[-1] is not None and "value + 12345" in results[-1]
    assert all(r is None for r in results[:-2])
    assert backend.generation_requests()[-1].body["prompt"].split("<|fim_suffix|>")[0].endswith("value + 12345")


async def test_cancel_request_closes_the_backend_stream(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=[f"x{i} " for i in range(200)], delay_s=0.05)]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "print(█)\n")
        msg_id, fut = send_inline(client, uri, pos)
        await wait_for(lambda: backend.requests and backend.requests[-1].chunks_sent >= 3)
        cancel(client, msg_id)
        await wait_for(lambda: backend.requests[-1].ended is not None, timeout=2)
        seen = backend.requests[-1]
        assert seen.client_closed
        assert seen.chunks_sent < 30
        try:
            result = await asyncio.wait_for(fut, 5)
        except Exception as exc:  # cancelled requests answer with an error (RequestCancelled)
            result = exc
        assert result is None or isinstance(result, Exception)
        # the server is fine afterwards
        backend.script = [Reply(chunks=["ok"])]
        assert await inline(client, uri, pos) == "ok"


async def test_newer_request_supersedes_and_closes_the_older_stream(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["slow "] * 200, delay_s=0.05), Reply(chunks=["fast"])]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "a = █\nb = 1\n")
        _, old = send_inline(client, uri, pos)
        await wait_for(lambda: backend.requests and backend.requests[0].chunks_sent >= 2)
        other = pos.__class__(line=1, character=5)
        new = await inline(client, uri, other)
        assert new == "fast"
        assert first_text(await asyncio.wait_for(old, 5)) is None
        await wait_for(lambda: backend.requests[0].ended is not None, timeout=2)
        assert backend.requests[0].client_closed


async def test_same_position_is_served_from_cache(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["compute(1)"])
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "compute(1)"
        assert await inline(client, uri, pos) == "compute(1)"
    assert len(backend.generation_requests()) == 1


async def test_typed_ahead_answers_without_a_backend_request(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["compute(1)"])
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "compute(1)"
        pos = type_text(client, uri, 2, pos, "com")
        assert await inline(client, uri, pos, automatic=True) == "pute(1)"
        pos = type_text(client, uri, 3, pos, "pu")
        assert await inline(client, uri, pos, automatic=True) == "te(1)"
    assert len(backend.generation_requests()) == 1


async def test_typing_into_an_inflight_suggestion_reuses_its_stream(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["comp", "ute", "(1, ", "2)"], delay_s=0.15)]
    async with session(options(backend.url, debounceMs=100)) as client:
        uri, pos = open_doc(client, "x = █\n")
        _, first = send_inline(client, uri, pos)
        await wait_for(lambda: backend.requests and backend.requests[0].chunks_sent >= 1)
        pos = type_text(client, uri, 2, pos, "co")
        second = await inline(client, uri, pos, automatic=True)
        assert second == "mpute(1, 2)"
        assert first_text(await asyncio.wait_for(first, 5)) is None  # superseded
    assert len(backend.generation_requests()) == 1
    assert not backend.requests[0].client_closed  # the stream was kept, not restarted
