"""One connection, one health owner (issue 21, points 1 and 2), over real stdio.

A settings change that leaves the connection as it was keeps the backend, the served model, the
FIM-token check and the completion cache; a change of the connection rebuilds them. Chat asks the
health first, as completion does: an endpoint known not to answer gets a clear error at once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import chat_request, inline, open_doc, options, session, wait_for


class Counting(FakeBackend):
    """A fake backend that also counts the discovery requests (``/v1/models``, ``/tokenize``)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        self.paths.append(path)
        return await super()._route(method, path, body, reader, writer)

    def discovery(self) -> tuple[int, int]:
        return self.paths.count("/v1/models"), self.paths.count("/tokenize")


def _state(status: Any) -> Any:
    return status.get("state") if isinstance(status, dict) else getattr(status, "state", None)


def _change(client: Any, settings: dict[str, Any]) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"vllmCompanion": settings}))


@pytest.fixture
async def counting() -> AsyncIterator[Counting]:
    """A counting fake backend that answers every completion ``compute(1)``, stopped at teardown."""
    backend = Counting()
    await backend.start()
    backend.default = Reply(chunks=["compute(1)"])
    try:
        yield backend
    finally:
        await backend.stop()


async def test_a_settings_change_off_the_connection_keeps_the_cache_and_the_fim_check(counting: Counting) -> None:
    """debounceMs and maxTokens change: no second /v1/models or /tokenize, and the suggestion
    already made is served from the cache (it used to be dropped with the backend and the probes)."""
    async with session(options(counting.url)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "compute(1)"
        discovered, generations = counting.discovery(), len(counting.generation_requests())
        assert discovered[0] >= 1 and discovered[1] >= 1  # the model listed, its FIM tokens checked
        _change(client, {"completion": {"debounceMs": 50, "maxTokens": 40}})
        assert await inline(client, uri, pos) == "compute(1)"  # answered after the change (in order)
        assert len(counting.generation_requests()) == generations  # from the cache
        other, at = open_doc(client, "y = █\n")
        assert await inline(client, other, at) == "compute(1)"
        assert counting.generation_requests()[-1].body["max_tokens"] <= 40  # the change did apply
        assert counting.discovery() == discovered


async def test_a_new_endpoint_is_discovered_again(counting: Counting) -> None:
    """The model picker's change is a change of the connection: the new model is used, and the
    cache of the old one is not served for it."""
    async with session(options(counting.url)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "compute(1)"
        models = counting.discovery()[0]
        client.protocol.notify("vllmCompanion/didChangeModel", {"backend": {"model": "other-model"}})
        await wait_for(lambda: counting.discovery()[0] > models)  # the new connection is probed
        generations = len(counting.generation_requests())
        assert await inline(client, uri, pos) == "compute(1)"
        assert len(counting.generation_requests()) == generations + 1
        assert counting.generation_requests()[-1].body["model"] == "other-model"


async def test_chat_to_an_endpoint_known_down_fails_at_once() -> None:
    """/v1/models hangs: the start-up probe times out and the endpoint is left alone. A chat then
    answers a clear error at once instead of waiting its own timeout (3 s) on the same hang, and
    sends nothing."""
    backend = await FakeBackend().start()
    backend.models_hang = True
    try:
        opts = options(backend.url)
        opts["backend"] = {"endpoint": backend.url, "firstTokenTimeoutS": 3.0, "connectTimeoutS": 1.0}
        async with session(opts) as client:
            await wait_for(lambda: any(_state(s) == "unavailable" for s in client.statuses), timeout=10)
            t0 = time.monotonic()
            with pytest.raises(Exception, match=r"(?i)unavailable"):
                await chat_request(client, {"messages": [{"role": "user", "content": "hi"}]})
            assert time.monotonic() - t0 < 1.0
            assert not backend.requests
    finally:
        await backend.stop()
