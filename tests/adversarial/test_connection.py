"""Attacks on the connection and the endpoint's health (issue 21: backend/connection.py,
backend/health.py, httpclient.py, engine/readiness.py, app.py ``reconnect``), over real stdio
where the server decides, on a real socket where one read is attacked.

Each case is named after what it attacks: an HTTP proxy of the environment on loopback traffic,
a launch-mode server before its engine, next-edit past the availability gate, a workspace's
storm of tunables that are part of the connection, a change mid-chat, endpoints that flap, lie
or redirect, and unbounded bodies on the probes (a model list of 370,000 cards too).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.adversarial.test_context import PING_CAP_S, pings
from tests.e2e.test_models import ModelsBackend, models
from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import (
    as_dict,
    chat_request,
    client_capabilities_for,
    inline,
    open_doc,
    options,
    raw_request,
    session,
    wait_for,
)
from vllm_companion.backend import Backend, Connection
from vllm_companion.backend.errors import BackendError
from vllm_companion.config import BackendSettings
from vllm_companion.engine.readiness import models_listed
from vllm_companion.httpclient import http_client

FAKE_ENGINE = [sys.executable, str(Path(__file__).resolve().parent.parent / "fake_engine.py")]
INLINE_EDIT = "textDocument/copilotInlineEdit"


class Recording(FakeBackend):
    """A fake backend that records every path asked and every connection accepted."""

    def __init__(self, model: str = "qwen2.5-coder-1.5b") -> None:
        super().__init__(model)
        self.paths: list[str] = []
        self.connections = 0
        self.listed: list[list[str]] = []  # what /v1/models answers, in turn (flapping); [] = one model

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await super()._handle(reader, writer)

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        self.paths.append(path)
        if path == "/v1/models" and self.listed:
            ids = self.listed[self.paths.count("/v1/models") % len(self.listed)]
            data = [{"id": i, "object": "model", "max_model_len": 4096} for i in ids]
            body_bytes = json.dumps({"object": "list", "data": data}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(body_bytes)).encode() + b"\r\n\r\n" + body_bytes)
            await writer.drain()
            return True
        return await super()._route(method, path, body, reader, writer)

    def count(self, path: str) -> int:
        return self.paths.count(path)


class Listener:
    """A raw TCP listener that records what arrives (a proxy, a redirect's target, a squatter)
    and answers each request with ``answer``, or streams ``flood`` bytes of body."""

    def __init__(self, answer: bytes = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n",
                 flood: int = 0, path_prefix: bytes = b"") -> None:
        self.answer, self.flood, self.path_prefix = answer, flood, path_prefix
        self.seen: list[bytes] = []
        self.sent = 0  # body bytes written before the client left
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> Listener:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.seen.append(head)
            if not self.flood:
                writer.write(self.answer)
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(self.flood).encode() + b"\r\n\r\n" + self.path_prefix)
            piece = b" " * (1 << 16)
            while self.sent < self.flood:
                writer.write(piece)
                await writer.drain()
                self.sent += len(piece)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()


def _change(client: Any, settings: dict[str, Any]) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"vllmCompanion": settings}))


def _state(status: Any) -> Any:
    return as_dict(status).get("state")


# -- where the bytes go ------------------------------------------------------------------------


async def test_http_proxy_of_the_environment_never_sees_loopback_traffic() -> None:
    """HTTP_PROXY without NO_PROXY (common on company laptops): the prompt for the local engine,
    rendered unredacted because it is on loopback, and its key went to the proxy (httpx honours
    the environment's proxies for 127.0.0.1 too); the completion failed on the proxy's 502."""
    backend, proxy = await Recording().start(), await Listener().start()
    backend.default = Reply(chunks=["compute(1)"])
    backend.api_key = "engine-key"
    proxy_url = f"http://127.0.0.1:{proxy.port}"
    env = {"HTTP_PROXY": proxy_url, "http_proxy": proxy_url, "ALL_PROXY": proxy_url, "NO_PROXY": "", "no_proxy": ""}
    try:
        opts = options(backend.url)
        opts["backend"]["apiKey"] = "engine-key"
        async with session(opts, env=env) as client:
            uri, pos = open_doc(client, "x = █\n")
            assert await inline(client, uri, pos) == "compute(1)"
    finally:
        await backend.stop()
        await proxy.stop()
    assert proxy.seen == []


async def test_a_launch_mode_server_sends_nothing_to_the_settings_endpoint_before_its_engine(tmp_path: Path) -> None:
    """backend.launch with an engine that never gets ready: the connection used to be the
    settings' endpoint (the default 127.0.0.1:8000, any local process) until the engine's
    arrived, and the engine binding said "ready" until ``start`` ran; an inline completion right
    after ``initialize``, a next-edit request (no gate at all) and the model picker sent the
    file and the user's key there."""
    decoy = await Recording().start()
    decoy.default = Reply(chunks=["stolen"])
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["hang"]))
    env = {"VLLM_COMPANION_CACHE": str(tmp_path / "cache"), "FAKE_ENGINE_SCRIPT": str(script)}
    opts = {
        "backend": {"launch": True, "endpoint": decoy.url, "apiKey": "user-key"},
        "engine": {"command": FAKE_ENGINE, "device": "cpu", "model": "fake-model", "stallTimeoutS": 60},
        "completion": {"debounceMs": 0},
        "nextEdit": {"model": "on"},
    }
    try:
        async with session(opts, env=env) as client:
            uri, pos = open_doc(client, "token = 'abc'\nx = █\n")
            first = await inline(client, uri, pos)
            edit = await raw_request(client, INLINE_EDIT, {"textDocument": {"uri": uri, "version": 1},
                                                           "position": {"line": 1, "character": 4}})
            listing = await raw_request(client, "vllmCompanion/models", None)
            await asyncio.sleep(0.5)
    finally:
        await decoy.stop()
    assert first is None and not as_dict(edit).get("edits")
    assert as_dict(listing)["served"] == []
    assert decoy.paths == [] and decoy.connections == 0


async def test_next_edit_leaves_an_endpoint_known_down_alone() -> None:
    """/v1/models hangs: the endpoint is known down and completion and chat answer at once. A
    next-edit request used to start its own listing (one more hung request per keystroke) and
    wait on it to its cap."""
    backend = await Recording().start()
    backend.models_hang = True
    opts = options(backend.url)
    opts["backend"] = {"endpoint": backend.url, "firstTokenTimeoutS": 3.0, "connectTimeoutS": 1.0}
    opts["nextEdit"] = {"model": "on"}
    try:
        async with session(opts) as client:
            await wait_for(lambda: any(_state(s) == "unavailable" for s in client.statuses), timeout=10)
            uri, _ = open_doc(client, "def f(count):\n    return count\n")
            listings = backend.count("/v1/models")
            t0 = time.monotonic()
            for _ in range(5):
                await raw_request(client, INLINE_EDIT, {"textDocument": {"uri": uri, "version": 1},
                                                        "position": {"line": 1, "character": 4}})
            elapsed = time.monotonic() - t0
            asked = backend.count("/v1/models") - listings
    finally:
        await backend.stop()
    assert elapsed < 1.5
    assert asked <= 1  # the recovery probe's own, at most
    assert backend.generation_requests() == []


# -- what a change rebuilds ----------------------------------------------------------------------


async def test_a_workspace_storm_of_timeout_changes_costs_no_discovery_and_no_new_clients() -> None:
    """300 ``didChangeConfiguration`` toggling ``backend.firstTokenTimeoutS`` (a tunable a
    repository may set, and part of the connection): each one built a new backend, dropped the
    served model, the FIM check and the completion cache and probed the endpoint again (300
    listings on the endpoint, 300 HTTP clients)."""
    backend = await Recording().start()
    backend.default = Reply(chunks=["compute(1)"])
    try:
        async with session(options(backend.url)) as client:
            uri, pos = open_doc(client, "x = █\n")
            assert await inline(client, uri, pos) == "compute(1)"
            listings, generations, connections = (backend.count("/v1/models"), len(backend.generation_requests()),
                                                  backend.connections)
            for i in range(300):
                _change(client, {"backend": {"firstTokenTimeoutS": 5.0 + i % 2, "totalTimeoutS": 30.0 + i % 2}})
            t0 = time.monotonic()
            assert await inline(client, uri, pos) == "compute(1)"
            assert time.monotonic() - t0 < 5.0
            await asyncio.sleep(0.3)
    finally:
        await backend.stop()
    assert backend.count("/v1/models") == listings
    assert len(backend.generation_requests()) == generations  # the cache survived
    assert backend.connections <= connections + 1


async def test_a_workspace_timeout_change_does_not_cut_a_chat_in_flight() -> None:
    """A repository's settings arriving mid-answer (``workspace/configuration`` is pulled again
    on every change) closed the old HTTP client under the streaming chat: the answer was cut."""
    backend = await Recording().start()
    words = [f"w{i} " for i in range(20)]
    backend.default = Reply(chunks=words, delay_s=0.05)
    try:
        async with session(options(backend.url)) as client:
            chat = asyncio.ensure_future(chat_request(client, {"messages": [{"role": "user", "content": "hi"}]}))
            await wait_for(lambda: any(r.chunks_sent >= 3 for r in backend.generation_requests()), timeout=5)
            _change(client, {"backend": {"totalTimeoutS": 45.0, "connectTimeoutS": 2.0}})
            result = as_dict(await chat)
    finally:
        await backend.stop()
    assert result["content"] == "".join(words)


async def test_a_picked_model_id_that_reads_like_a_url_stays_on_the_same_endpoint_and_key() -> None:
    """A picked model id that reads like a URL or a path stays a model id on the same endpoint,
    with the same key (the pick rebuilds the connection: nothing else of it may move)."""
    backend = await Recording().start()
    backend.api_key = "k1"
    backend.default = Reply(chunks=["ok"])
    try:
        opts = options(backend.url)
        opts["backend"]["apiKey"] = "k1"
        async with session(opts) as client:
            picked = "http://127.0.0.1:1/v1#@evil/../x"
            client.protocol.notify("vllmCompanion/didChangeModel", {"backend": {"model": picked}})
            await wait_for(lambda: any(as_dict(s).get("model") == picked for s in client.statuses), timeout=5)
            uri, pos = open_doc(client, "x = █\n")
            assert await inline(client, uri, pos) == "ok"
    finally:
        await backend.stop()
    assert backend.unauthorized == 0
    assert backend.generation_requests()[-1].body["model"] == picked


# -- what the endpoint says ----------------------------------------------------------------------


async def test_a_models_list_that_reorders_each_time_does_not_flap_the_served_model() -> None:
    """No ``backend.model``: the served model is the endpoint's first. A gateway that lists its
    models in another order on every call (LiteLLM, Ollama by modification time) switched the
    served model, its family and the status on every health check."""
    backend = await Recording("a-model").start()
    backend.listed = [["qwen2.5-coder-1.5b", "starcoder2-3b"], ["starcoder2-3b", "qwen2.5-coder-1.5b"]]
    opts = options(backend.url)
    opts["backend"]["healthIntervalS"] = 0.1
    try:
        async with session(opts) as client:
            await wait_for(lambda: backend.count("/v1/models") >= 8, timeout=10)
            models = {as_dict(s).get("model") for s in client.statuses} - {None}
    finally:
        await backend.stop()
    assert len(models) == 1


async def test_chat_refused_while_down_answers_again_once_the_recovery_probe_succeeds() -> None:
    """The chat's new gate: refused at once while the endpoint is known down, and open again as
    soon as the background recovery probe gets an answer, with nobody typing."""
    backend = await Recording().start()
    backend.models_hang = True
    backend.default = Reply(chunks=["back"])
    opts = options(backend.url)
    opts["backend"] = {"endpoint": backend.url, "firstTokenTimeoutS": 1.0, "connectTimeoutS": 1.0}
    try:
        async with session(opts) as client:
            await wait_for(lambda: any(_state(s) == "unavailable" for s in client.statuses), timeout=10)
            with pytest.raises(Exception, match=r"(?i)unavailable"):
                await chat_request(client, {"messages": [{"role": "user", "content": "hi"}]})
            backend.models_hang = False
            await wait_for(lambda: _state(client.statuses[-1]) == "ready", timeout=20)
            result = as_dict(await chat_request(client, {"messages": [{"role": "user", "content": "hi"}]}))
    finally:
        await backend.stop()
    assert result["content"] == "back"


async def test_a_redirect_to_another_host_is_not_followed_with_the_key() -> None:
    """The endpoint answers 307 to another host: the bearer key must not follow it."""
    target = await Listener(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").start()
    redirect = f"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://localhost:{target.port}/v1/models\r\n" \
               "content-length: 0\r\n\r\n"
    source = await Listener(redirect.encode()).start()
    try:
        backend = Backend(Connection.attach(BackendSettings(endpoint=f"http://127.0.0.1:{source.port}/v1",
                                                            api_key="secret")))
        with pytest.raises(BackendError):
            await backend.served_model()
        await backend.close()
    finally:
        await source.stop()
        await target.stop()
    assert len(source.seen) == 1 and target.seen == []


async def test_a_tokenize_that_floods_is_read_no_further_than_its_cap() -> None:
    """A lying ``/tokenize`` (the FIM-token check) answers 256 MiB: the whole body was read into
    memory before the first 64 KiB were looked at."""
    flood = await Listener(flood=256 << 20, path_prefix=b'{"count": 1,').start()
    try:
        backend = Backend(Connection.attach(BackendSettings(endpoint=f"http://127.0.0.1:{flood.port}/v1")))
        assert await backend.tokenize_count("<fim_prefix>", "m") is None
        await backend.close()
    finally:
        await flood.stop()
    assert flood.sent < 8 << 20


async def test_an_engine_models_list_that_floods_is_read_no_further_than_its_cap() -> None:
    """Readiness (engine/readiness.py) read a recorded engine's whole ``/v1/models`` before
    checking its size."""
    flood = await Listener(flood=256 << 20, path_prefix=b'{"data": [').start()
    try:
        async with http_client(5.0) as http:
            assert await models_listed(http, f"http://127.0.0.1:{flood.port}/v1") is False
    finally:
        await flood.stop()
    assert flood.sent < 8 << 20


def test_the_users_gateway_headers_never_reach_the_launched_engine() -> None:
    """``backend.headers`` carry tokens for the endpoint the user configured (a gateway); before,
    the launched engine's connection kept them and every request to our own engine carried them."""
    settings = BackendSettings(launch=True, headers={"X-Gateway-Token": "s3cret"})
    pending = Connection.attach(settings)
    engine = pending.launched(("http://127.0.0.1:41234/v1", "smollm2", "engine-key", True))
    assert engine.headers == ()
    assert engine.api_key == "engine-key" and not engine.engine_pending
    assert Connection.attach(BackendSettings(headers={"X-Gateway-Token": "s3cret"})).headers == (
        ("X-Gateway-Token", "s3cret"),)


async def test_chats_missing_a_context_length_at_once_share_one_listing_of_a_hung_endpoint(
        backend: FakeBackend) -> None:
    """Each chat for a model the listing lacks listed the models itself, before the chat limiter:
    eight at once asked a hung endpoint for eight listings (of up to 4 MiB each, parsed in eight
    threads). They share one now, within the probe's deadline, and all still answer."""
    backend.default = Reply(chunks=["ok"])
    settings = options(backend.url)
    settings["backend"]["firstTokenTimeoutS"] = 1.0  # the lookup's deadline: min(8 s, this)
    caps = client_capabilities_for("visual-studio-code")
    assert caps.workspace is not None
    caps.workspace.configuration = False  # no start-up listing left to come after the first chat
    ask = {"messages": [{"role": "user", "content": "hi"}], "model": "a-model-the-endpoint-does-not-list"}
    async with session(settings, caps) as client:
        assert as_dict(await chat_request(client, {"messages": ask["messages"]}))["content"] == "ok"
        await wait_for(lambda: backend.models_asked >= 1)
        backend.models_hang = True
        listed = backend.models_asked
        answers = await asyncio.gather(*(chat_request(client, ask, timeout=20) for _ in range(8)))
        assert [as_dict(a)["content"] for a in answers] == ["ok"] * 8
        assert backend.models_asked == listed + 1



async def test_a_models_list_of_370k_duplicate_cards_never_stalls_the_server() -> None:
    """4 MiB of ``{"id": "a"}`` cards (370,000): the cards were checked and deduplicated on the
    event loop (0.2 s each listing; ``json.loads`` itself, in its thread, held the GIL ~80 ms in
    one C call, and a full garbage collection the parse set off walked the whole heap, app.py). A
    trivial request is answered within ``PING_CAP_S`` while the picker lists them, and the listing
    is bounded: one model, marked as cut."""
    body = json.dumps({"object": "list", "data": [{"id": "a"}] * 370_000}, separators=(",", ":")).encode()
    assert len(body) < 4 << 20
    engine = await ModelsBackend(body).start()
    stop = asyncio.Event()
    try:
        async with session(options(engine.url)) as client:
            small, _ = open_doc(client, "x = 1█")
            await wait_for(lambda: any(_state(s) in ("ready", "error") for s in client.statuses), timeout=30)
            pinger = asyncio.ensure_future(pings(client, small, stop))  # the start-up's own listing is over
            answers = [await models(client, timeout=15) for _ in range(4)]
            stop.set()
            times = await pinger
    finally:
        stop.set()
        await engine.stop()
    assert len(times) > 5 and max(times) < PING_CAP_S, sorted(times)[-5:]
    assert all(a["served"] == [{"id": "a", "maxModelLen": None}] and a["truncated"] is True for a in answers)


async def test_a_gateway_catalogue_naming_a_next_edit_model_does_not_take_the_users_next_edit_prompts() -> None:
    """A gateway lists hundreds of models; one whose id reads like a trained next-edit model
    (``zeta``, ``sweep``, ``instinct``) got every next-edit prompt: the user's code to a provider
    (and a bill) the user never picked. Only a short listing (a team's front: two) keeps one apart."""
    from tests.e2e.test_team_next_edit import COMPLETION_MODEL, Listing, next_edit_asked, sweep_prompts

    catalogue = [COMPLETION_MODEL, *(f"vendor{i}/chat-model" for i in range(300)), "cheap-host/sweep-next-edit-1.5b",
                 "cheap-host/zeta-7b"]
    endpoint = await Listing(catalogue).start()
    try:
        init = {"backend": {"endpoint": endpoint.url}, "completion": {"debounceMs": 0},
                "nextEdit": {"timeoutMs": 10000, "model": "on"}}
        async with session(init) as client:
            uri, pos = open_doc(client, "def f(count):\n    █\n", name="f.py")
            assert await inline(client, uri, pos) == "pass"
            await next_edit_asked(client, uri)
        asked = endpoint.generation_requests()
        assert len(asked) >= 2 and {r.body["model"] for r in asked} == {COMPLETION_MODEL}
        assert sweep_prompts(endpoint) == []
    finally:
        await endpoint.stop()
