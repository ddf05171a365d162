"""The model picker's surfaces (issue 23, item 9): an endpoint's ``/v1/models`` list, however
large or strange, becomes a bounded answer to ``vllmCompanion/models`` in bounded time
(``backend/listing.py``); ``vllmCompanion/didChangeModel`` takes model ids only, and a workspace's
settings still cannot pick the model. Real server over real stdio, the fake engine on a real
socket serving the hostile bodies."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from typing import Any

from tests.adversarial.test_context import PING_CAP_S, pings
from tests.e2e.test_models import DID_CHANGE, MODELS, ModelsBackend, models, two_models
from tests.fake_backend import Reply
from tests.lsp_session import as_dict, chat_request, open_doc, options, raw_request, session, wait_for


async def _answer(body: bytes, **backend_options: object) -> tuple[dict[str, object], float]:
    return await _answer_from(await ModelsBackend(body).start(), **backend_options)


async def _answer_from(backend: Any, **backend_options: object) -> tuple[dict[str, Any], float]:
    """The models answer of a server over ``backend`` (started; stopped here), and how long it took."""
    opts = options(backend.url)
    opts["backend"].update(backend_options)
    try:
        async with session(opts) as client:
            await _settled(client)
            started = time.monotonic()
            answer = await models(client, timeout=15)
            took = time.monotonic() - started
            again = await models(client, timeout=15)  # still serving after it
    finally:
        await backend.stop()
    assert again["served"] == answer["served"]
    return answer, took


async def _settled(client: Any) -> None:
    """The server's own start-up probe of the endpoint is over (``Backend.model_info`` reads the
    list through the OpenAI SDK on the event loop: 100,000 models held it ~4 s, see the report of
    issue 23), so what is timed is this route alone."""
    done = ("ready", "unavailable", "error")
    await wait_for(lambda: any(as_dict(s).get("state") in done for s in client.statuses), timeout=30)


def _listing(cards: list[object]) -> bytes:
    return json.dumps({"object": "list", "data": cards}).encode()


async def test_a_hundred_thousand_models_make_a_bounded_answer() -> None:
    answer, took = await _answer(_listing([{"id": f"m{i}"} for i in range(100_000)]))
    served = answer["served"]
    assert isinstance(served, list) and len(served) == 1000
    assert answer["truncated"] is True
    assert took < 5


async def test_huge_and_strange_model_ids_are_dropped_not_cut() -> None:
    cards = [{"id": "x" * 1_000_000}, {"id": "evil\u202eexe"}, {"id": "line\nbreak"}, {"id": 7}, {"id": ""},
             {"id": ["list"]}, "not a card", {"id": "real", "max_model_len": 1e308}, {"id": "real"}]
    answer, _ = await _answer(_listing(cards))
    assert answer["served"] == [{"id": "real", "maxModelLen": None}]


async def test_a_model_list_over_the_byte_cap_is_refused_with_a_reason() -> None:
    body = _listing([{"id": "ok", "pad": "p" * (6 << 20)}])
    answer, took = await _answer(body)
    assert answer["served"] == [] and "MiB" in str(answer["error"])
    assert took < 5


def _one_card_of_400k_keys() -> bytes:
    """4 MiB of one card with 400,000 keys: ``json.loads`` built them in one C step (~140 ms)."""
    return b'{"object":"list","data":[{"id":"m",' + b",".join(b'"%x":0' % i for i in range(400_000)) + b"}]}"


def _empty_lists() -> bytes:
    """4 MiB of 1.4 M empty lists: no object among them, so no call back into Python (~42 ms)."""
    return b'{"object":"list","data":[' + b",".join([b"[]"] * 1_390_000) + b"]}"


def _lists_nested_100_deep() -> bytes:
    """4 MiB of 20,866 lists nested 100 deep: one comma per 100 lists, 2 M lists built in one C
    step (the loop waited ~1.2 s when the scan counted commas only)."""
    nested = b"[" * 100 + b"]" * 100
    return b'{"data":[' + b",".join([nested] * ((4 << 20) // (len(nested) + 1) - 1)) + b"]}"


async def test_model_lists_the_parser_builds_in_one_step_are_refused_while_the_editor_is_answered() -> None:
    """A trivial request is answered within ``PING_CAP_S`` while the picker lists any of these
    bodies, and the listing is refused by the pre-scan, with its reason (``listing._values``)."""
    for body in (_one_card_of_400k_keys(), _empty_lists(), _lists_nested_100_deep()):
        assert len(body) <= 4 << 20  # under the byte cap: the scan refuses it, not the cap
        engine = await ModelsBackend(body).start()
        stop = asyncio.Event()
        try:
            async with session(options(engine.url)) as client:
                small, _ = open_doc(client, "x = 1█")
                await _settled(client)  # the start-up's own listing is over
                pinger = asyncio.ensure_future(pings(client, small, stop))
                answers = [await models(client, timeout=15) for _ in range(3)]
                stop.set()
                times = await pinger
        finally:
            stop.set()
            await engine.stop()
        assert len(times) > 3 and max(times) < PING_CAP_S, sorted(times)[-5:]
        for answer in answers:
            assert answer["served"] == [] and "not a model list" in str(answer["error"]), answer


async def test_a_model_list_nested_a_hundred_thousand_deep_is_not_json_to_us() -> None:
    answer, _ = await _answer(b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert answer["served"] == [] and answer["error"]


async def test_a_model_list_that_is_not_a_list_is_an_empty_answer() -> None:
    for body in (b"null", b'{"data": {"id": "x"}}', b"\xff\xfe garbage", b'{"data": "' + b"a" * 1000 + b'"}'):
        answer, _ = await _answer(body)
        assert answer["served"] == [] and answer["error"]


async def test_a_hung_model_list_costs_its_cap_not_the_editor() -> None:
    backend = await ModelsBackend(two_models()).start()
    backend.models_hang = True
    opts = options(backend.url)
    opts["backend"]["firstTokenTimeoutS"] = 1.0
    try:
        async with session(opts) as client:
            started = time.monotonic()
            answer = await models(client, timeout=15)
            took = time.monotonic() - started
    finally:
        await backend.stop()
    assert answer["served"] == [] and "in time" in str(answer["error"])
    assert took < 3


async def test_did_change_model_takes_model_ids_only() -> None:
    backend = await ModelsBackend().start()
    backend.default = Reply(chunks=["ok"])
    try:
        async with session(options(backend.url)) as client:
            for bad in ({"model": "y" * 100_000}, {"model": {"nested": "coder-b"}}, {"model": ["coder-b"]},
                        {"model": "coder-b\u0000"}, {"model": 3}, "coder-b", None):
                client.protocol.notify(DID_CHANGE, {"backend": bad, "chat": bad})
            client.protocol.notify(DID_CHANGE, [1, 2])
            answer = as_dict(await raw_request(client, MODELS, None, timeout=10))
            await chat_request(client, {"messages": [{"role": "user", "content": "hi"}]})
    finally:
        await backend.stop()
    assert answer["current"] == "coder-a" and answer["chatModel"] is None
    assert [r.body["model"] for r in backend.generation_requests()] == ["coder-a"]


async def test_workspace_settings_cannot_pick_the_model_the_picker_shows() -> None:
    backend = await ModelsBackend().start()
    try:
        workspace = {"backend": {"model": "coder-b"}, "chat": {"model": "coder-b"}}
        async with session(options(backend.url), configuration=workspace) as client:
            answer = await models(client)
    finally:
        await backend.stop()
    assert answer["current"] == "coder-a" and answer["chatModel"] is None


class EncodedModelsBackend(ModelsBackend):
    """``/v1/models`` sent with a ``content-encoding`` header (a decompression bomb) or, with
    ``drip``, one byte every 0.2 s for ever (each read is quick, the whole never ends)."""

    encoding = "gzip"
    drip = False

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        if path != "/v1/models":
            return await super()._route(method, path, body, reader, writer)
        if self.drip:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            while True:
                writer.write(b"1\r\n \r\n")
                await writer.drain()
                await asyncio.sleep(0.2)
        head = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: {self.encoding}\r\n"
                f"content-length: {len(self.models_body)}\r\n\r\n")
        writer.write(head.encode() + self.models_body)
        await writer.drain()
        return True


def _gzip_bomb(mebibytes: int) -> bytes:
    """A model list that inflates to ``mebibytes`` MiB (1 GiB of it is ~1 MiB gzipped)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = packer.compress(b'{"data": [{"id": "x", "pad": "')
    chunk = b"a" * (1 << 20)
    return head + b"".join(packer.compress(chunk) for _ in range(mebibytes)) + packer.flush()


async def test_a_gzip_bomb_model_list_stops_at_the_cap_on_inflated_bytes() -> None:
    # 1 GiB inflated (twice gzipped: ~4 KiB on the wire); httpx2 inflates in 1 MiB pieces and the
    # 4 MiB cap counts the inflated bytes, so it stops after ~5 MiB.
    for encoding, body in (("gzip", _gzip_bomb(1024)), ("gzip, gzip", gzip.compress(_gzip_bomb(1024), 9))):
        backend = await EncodedModelsBackend(body).start()
        backend.encoding = encoding
        answer, took = await _answer_from(backend, firstTokenTimeoutS=1.0)
        assert answer["served"] == [] and "MiB" in str(answer["error"]), encoding
        assert took < 3, encoding


async def test_a_model_list_dripping_a_byte_at_a_time_costs_one_total_cap() -> None:
    backend = await EncodedModelsBackend().start()
    backend.drip = True
    answer, took = await _answer_from(backend, firstTokenTimeoutS=1.0)
    assert answer["served"] == [] and "in time" in str(answer["error"])
    assert took < 3  # firstTokenTimeoutS 1 s for the whole read, though a byte comes every 0.2 s


async def test_did_change_model_cannot_move_the_endpoint_the_key_or_the_headers() -> None:
    backend, other = await ModelsBackend().start(), await ModelsBackend().start()
    backend.default = Reply(chunks=["ok"])
    smuggled = {"model": "coder-b", "endpoint": other.url, "apiKey": "stolen", "headers": {"X-Evil": "1"},
                "launch": True}
    try:
        async with session(options(backend.url)) as client:
            client.protocol.notify(DID_CHANGE, {"backend": smuggled, "chat": smuggled, "engine": {"command": "x"}})
            answer = await settled(client, "coder-b")
            await chat_request(client, {"messages": [{"role": "user", "content": "hi"}]})
    finally:
        await backend.stop()
        await other.stop()
    assert answer["current"] == "coder-b" and answer["chatModel"] == "coder-b"
    sent = backend.generation_requests()
    assert [r.body["model"] for r in sent] == ["coder-b"]
    assert all("authorization" not in r.headers and "x-evil" not in r.headers for r in sent)
    assert other.generation_requests() == []


async def test_a_flood_of_did_change_model_settles_on_the_last_pick() -> None:
    backend = await ModelsBackend().start()
    backend.default = Reply(chunks=["ok"])
    try:
        async with session(options(backend.url)) as client:
            started = time.monotonic()
            for i in range(2000):
                client.protocol.notify(DID_CHANGE, {"backend": {"model": "coder-b" if i % 2 else "coder-a"}})
            answer = await settled(client, "coder-b", timeout=30)
            took = time.monotonic() - started
            await chat_request(client, {"messages": [{"role": "user", "content": "hi"}]})
    finally:
        await backend.stop()
    assert answer["current"] == "coder-b"
    assert [r.body["model"] for r in backend.generation_requests()] == ["coder-b"]
    assert took < 10


async def settled(client: Any, model: str, timeout: float = 10) -> dict[str, Any]:
    """The models answer once the picks are applied (didChangeModel settles a burst first)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await models(client, timeout=timeout)
        if answer["current"] == model or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.05)
