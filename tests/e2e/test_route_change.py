"""A route change mid-chat (chat/answer.py, backend/connection.py ``LeasedClient``), with fake
engines on real sockets: the chat streaming on the old route finishes there with its whole answer,
the next request takes the new one, and the old HTTP client is closed once the chat is done (no
connection left open to the old endpoint). Where the old endpoint dies mid-answer the chat ends
with what came and an error of the taxonomy (backend/errors.py), and the new route keeps serving.

A model pick (``vllmCompanion/didChangeModel``) runs over real stdio. An endpoint change cannot:
the endpoint is the user's alone (settings_trust.py), so a session cannot move it after
``initialize``; the engine binding moves it (an engine back on another port) through
``Services.reconnect``, which hands ``Health.use`` a new backend, as the two-engine cases do here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, chat_request, options, session, wait_for
from vllm_companion.backend import Backend, BackendError, Connection, ErrorKind
from vllm_companion.backend.health import Health
from vllm_companion.chat.answer import Answers
from vllm_companion.chat.requests import ChatResult
from vllm_companion.config import BackendSettings, ChatSettings
from vllm_companion.nextedit.model import trained_next_edit
from vllm_companion.repetition import LoopHealth
from vllm_companion.status import ServerStatus, StatusReporter
from vllm_companion.turns import Turns

WORDS = [f"a{i} " for i in range(20)]
ASK = {"messages": [{"role": "user", "content": "hi"}]}


class Open(FakeBackend):
    """A fake engine that counts the TCP connections open on it now, and its model listings."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.open = self.listings = 0

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        self.listings += path == "/v1/models"
        return await super()._route(method, path, body, reader, writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            await super()._handle(reader, writer)
        finally:
            self.open -= 1


@pytest.fixture
async def engines() -> AsyncIterator[tuple[Open, Open]]:
    a, b = await Open("model-a").start(), await Open("model-b").start()
    a.default, b.default = Reply(chunks=WORDS, delay_s=0.05), Reply(chunks=["from b"])
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def streaming(engine: FakeBackend, chunks: int = 3) -> None:
    await wait_for(lambda: any(r.chunks_sent >= chunks for r in engine.generation_requests()), timeout=10)


class Route:
    """The chat's answer path as app.py builds it, attached to ``engine``; ``move`` is what
    ``Services.reconnect`` does when the endpoint changes."""

    def __init__(self, engine: FakeBackend) -> None:
        status = ServerStatus(StatusReporter(lambda method, params: None, lambda text, error: None))
        self.health = Health(Backend(Connection.attach(BackendSettings(endpoint=engine.url))), "auto", status,
                             Attached(), trained_next_edit)
        self.answers = Answers(ChatSettings(), self.health, status, LoopHealth(), Turns())

    def ask(self) -> asyncio.Task[ChatResult]:
        return asyncio.ensure_future(self.answers.answer([{"role": "user", "content": "hi"}], lambda text: None))

    def move(self, engine: FakeBackend) -> Backend:
        old = self.health.backend
        self.health.use(Backend(Connection.attach(BackendSettings(endpoint=engine.url))))
        return old


class Attached:
    launch = False
    ready = True


async def test_a_chat_streaming_when_the_endpoint_moves_finishes_on_the_old_one(engines: tuple[Open, Open]) -> None:
    a, b = engines
    route = Route(a)
    chat = route.ask()
    await streaming(a)
    old = route.move(b)
    first = await asyncio.wait_for(chat, 20)
    second = await asyncio.wait_for(route.ask(), 10)
    await wait_for(lambda: a.open == 0)  # the old client closed once its stream ended
    assert old.client.http.is_closed
    await route.health.close()
    assert first.content == "".join(WORDS) and first.finish_reason == "stop" and first.model == "model-a"
    (on_a,) = a.generation_requests()
    assert not on_a.client_closed
    assert second.content == "from b" and second.model == "model-b"
    assert len(b.generation_requests()) == 1


async def test_the_old_endpoint_dying_mid_answer_ends_the_chat_with_an_error_not_a_crash(
        engines: tuple[Open, Open]) -> None:
    a, b = engines
    route = Route(a)
    chat = route.ask()
    await streaming(a)
    old = route.move(b)
    await a.stop()  # the old engine is gone for good
    first = await asyncio.wait_for(chat, 20)
    second = await asyncio.wait_for(route.ask(), 10)
    assert old.client.http.is_closed
    assert route.health.refusal() is None  # the old route's failure is not the new one's
    await route.health.close()
    assert first.finish_reason == "error" and first.error is not None
    assert first.content and "".join(WORDS).startswith(first.content)  # what came before
    assert first.error.split(":")[0] in {"unavailable", "upstream", "server"}
    assert second.content == "from b"


async def test_a_new_stream_on_a_retired_client_with_nothing_in_flight_is_unavailable(
        engines: tuple[Open, Open]) -> None:
    a, b = engines
    route = Route(a)
    old = route.move(b)
    await asyncio.sleep(0.05)  # the retired client closes at once: nothing holds it
    with pytest.raises(BackendError) as gone:
        async for _ in old.stream_chat([{"role": "user", "content": "hi"}], model="model-a", max_tokens=5):
            pass
    await route.health.close()
    assert gone.value.kind is ErrorKind.UNAVAILABLE and a.generation_requests() == []


async def test_a_picked_model_lets_the_chat_on_the_old_one_finish() -> None:
    """``vllmCompanion/didChangeModel``: the same endpoint, another model, a new connection."""
    engine = await Open("model-a").start()
    engine.default = Reply(chunks=WORDS, delay_s=0.05)
    try:
        async with session(options(engine.url)) as client:
            chat = asyncio.ensure_future(chat_request(client, ASK, timeout=20))
            await streaming(engine)
            listed = engine.listings
            client.protocol.notify("vllmCompanion/didChangeModel", {"backend": {"model": "model-a"}})
            await wait_for(lambda: engine.listings > listed)
            result = as_dict(await chat)
            await wait_for(lambda: engine.open <= 1)  # the new client's kept connection at most
    finally:
        await engine.stop()
    assert result["content"] == "".join(WORDS) and result["finishReason"] == "stop"
