"""Chat's context length (backend/served.py ``context_length``) over real stdio against the fake
engine: a model the listing lacks, or a listing that hangs, is looked up once per connection
within the probe's deadline, and the chat answers with the assumed length (review finding left
from issue 21: every chat listed the models again, bounded only by the first-token timeout, and
a listing that hung failed the chat)."""

from __future__ import annotations

import time
from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import (
    as_dict,
    capture_partials,
    chat_request,
    client_capabilities_for,
    options,
    session,
    wait_for,
)

OTHER = "a-model-the-endpoint-does-not-list"
DEADLINE_S = 1.0  # backend.firstTokenTimeoutS: the probe's deadline is min(8 s, this)


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], "partialResultToken": "t1", **extra}


def no_pull() -> types.ClientCapabilities:
    """An editor without ``workspace/configuration``: the start-up probe's listing begins while
    ``initialized`` is handled, before the first chat (lsp/lifecycle.py), so the first chat
    shares it and no listing of the start-up is still to come when the test makes it hang."""
    caps = client_capabilities_for("visual-studio-code")
    assert caps.workspace is not None
    caps.workspace.configuration = False
    return caps


def init(backend: FakeBackend) -> dict[str, Any]:
    settings = options(backend.url)
    settings["backend"]["firstTokenTimeoutS"] = DEADLINE_S
    return settings


async def test_a_model_not_listed_and_no_max_model_len_are_looked_up_once() -> None:
    backend = await FakeBackend(max_model_len=None).start()  # lists its model without max_model_len
    backend.default = Reply(chunks=["ok"])
    try:
        async with session(init(backend), no_pull()) as client:
            capture_partials(client)
            assert as_dict(await chat_request(client, ask("hi")))["content"] == "ok"  # the served model
            listed = backend.models_asked
            for _ in range(3):
                assert as_dict(await chat_request(client, ask("hi", model=OTHER)))["content"] == "ok"
            assert as_dict(await chat_request(client, ask("hi")))["content"] == "ok"
    finally:
        await backend.stop()
    assert listed >= 1 and backend.models_asked == listed + 1  # OTHER: one lookup, then remembered
    assert [r.body["model"] for r in backend.generation_requests()][1:4] == [OTHER] * 3


async def test_a_hung_model_list_costs_one_deadline_and_the_chat_still_answers(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["ok"])
    async with session(init(backend), no_pull()) as client:
        capture_partials(client)
        assert as_dict(await chat_request(client, ask("hi")))["content"] == "ok"
        await wait_for(lambda: backend.models_asked >= 1)
        backend.models_hang = True
        listed = backend.models_asked
        took = []
        for _ in range(3):
            t0 = time.monotonic()
            assert as_dict(await chat_request(client, ask("hi", model=OTHER)))["content"] == "ok"
            took.append(time.monotonic() - t0)
        assert backend.models_asked == listed + 1  # asked once for this connection
    assert took[0] < DEADLINE_S + 1.5, took  # the lookup's deadline, then the answer
    assert max(took[1:]) < 0.5 * DEADLINE_S, took  # remembered: no wait at all
