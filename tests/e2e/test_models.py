"""The model picker over real stdio: ``vllmCompanion/models`` against a fake endpoint serving two
models, and ``vllmCompanion/didChangeModel`` switching between them without a restart (issue 23,
item 9). The hostile lists are in tests/adversarial/test_models.py."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, chat_request, options, raw_request, session

MODELS, DID_CHANGE = "vllmCompanion/models", "vllmCompanion/didChangeModel"


class ModelsBackend(FakeBackend):
    """The fake engine with its own ``/v1/models`` body (bytes, sent as they are)."""

    def __init__(self, body: bytes | None = None) -> None:
        super().__init__()
        self.models_body = body if body is not None else two_models()

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        if path == "/v1/models" and not self.models_hang:
            size = len(self.models_body)
            head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
            writer.write(head.encode() + self.models_body)
            await writer.drain()
            return True
        return await super()._route(method, path, body, reader, writer)


def two_models() -> bytes:
    cards = [{"id": "coder-a", "object": "model", "max_model_len": 4096},
             {"id": "coder-b", "object": "model", "max_model_len": 8192}]
    return json.dumps({"object": "list", "data": cards}).encode()


async def models(client: Any, timeout: float = 10.0) -> dict[str, Any]:
    answer: dict[str, Any] = as_dict(await asyncio.wait_for(client.protocol.send_request_async(MODELS, {}), timeout))
    return answer


async def test_the_picker_lists_the_served_models_and_the_current_one() -> None:
    backend = await ModelsBackend().start()
    try:
        async with session(options(backend.url)) as client:
            answer = await models(client)
    finally:
        await backend.stop()
    assert answer["served"] == [{"id": "coder-a", "maxModelLen": 4096}, {"id": "coder-b", "maxModelLen": 8192}]
    assert answer["current"] == "coder-a"  # none set: the endpoint's first, as the backend picks
    assert answer["alternatives"] == []  # attached, not launched: no launch plan to choose from
    assert answer["truncated"] is False and "error" not in answer


async def test_a_picked_model_is_used_at_once_and_unsetting_it_goes_back_to_the_first() -> None:
    backend = await ModelsBackend().start()
    backend.default = Reply(chunks=["ok"])
    ask = {"messages": [{"role": "user", "content": "hi"}]}
    try:
        async with session(options(backend.url)) as client:
            client.protocol.notify(DID_CHANGE, {"backend": {"model": "coder-b"}, "chat": {"model": None}})
            await _until(client, "coder-b")
            await chat_request(client, ask)
            client.protocol.notify(DID_CHANGE, {"backend": {"model": None}})
            await _until(client, "coder-a")
            await chat_request(client, ask)
    finally:
        await backend.stop()
    assert [r.body["model"] for r in backend.generation_requests()] == ["coder-b", "coder-a"]


async def test_an_endpoint_that_is_down_gives_an_empty_list_that_says_why() -> None:
    backend = await ModelsBackend().start()
    url = backend.url
    await backend.stop()
    async with session(options(url)) as client:
        started = time.monotonic()
        answer = await models(client)
    assert time.monotonic() - started < 6
    assert answer["served"] == [] and answer["alternatives"] == []
    assert answer["error"]


async def test_the_request_ignores_params_it_does_not_know() -> None:
    backend = await ModelsBackend().start()
    try:
        async with session(options(backend.url)) as client:
            answer = as_dict(await raw_request(client, MODELS, {"whatever": [1, 2, 3]}, timeout=10))
    finally:
        await backend.stop()
    assert [m["id"] for m in answer["served"]] == ["coder-a", "coder-b"]


async def _until(client: Any, model: str) -> None:
    for _ in range(100):
        if (await models(client))["current"] == model:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server never switched to {model}")
