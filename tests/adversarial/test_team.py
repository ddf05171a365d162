"""The team server from the network's side (issue 19, point 2): what answers without the key.

vLLM checks ``--api-key`` only under /v1, /v2, /inference and /cohere (vLLM issue #58144); the
rest of its app (/tokenize, /metrics, /invocations, /scale_elastic_ep, the dev routes...) and
vllm-router's admin routes answer anyone. The front (engine/front.py) faces the network in their
place. Attacked here: every route of the REAL vLLM app object (built by vLLM's own ``build_app``
in a subprocess) and vllm-router's admin routes, through the real front process, in front of an
engine that, like vLLM, serves every one of them; paths vLLM or a proxy would normalise; wrong
keys; big bodies; then the whole ``engine start --team`` service (fake engine executable, real
router), and ``--foreground --api-key`` (the key must not stay on any command line).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.test_shared_engine import FAKE
from tests.e2e.test_team import cli
from tests.fake_backend import FakeBackend, Reply, _send_json, dead_port
from tests.lsp_session import wait_for

EDITOR_ROUTES = {("POST", "/v1/completions"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
                 ("GET", "/health")}
# vllm-router 0.1.17's own routes (its --help, its docs, and the route strings in its binary)
ROUTER_ROUTES = [("POST", "/add_worker?url=http://203.0.113.9:8000"), ("POST", "/remove_worker?url=x"),
                 ("GET", "/list_workers"), ("POST", "/flush_cache"), ("GET", "/get_loads"), ("GET", "/metrics"),
                 ("GET", "/get_model_info"), ("GET", "/get_server_info"), ("GET", "/workers"),
                 ("POST", "/workers"), ("DELETE", "/workers/http%3A%2F%2F127.0.0.1%3A1"), ("GET", "/liveness"),
                 ("GET", "/readiness"), ("GET", "/health_generate"), ("POST", "/generate"),
                 ("POST", "/v1/generate"), ("POST", "/v1/embeddings"), ("POST", "/v1/rerank"), ("POST", "/rerank"),
                 ("POST", "/start_profile"), ("POST", "/stop_profile"), ("GET", "/scheduling/diagnostics"),
                 ("POST", "/finish_session"), ("GET", "/v1/responses/x/input")]
# Paths that a path-normalising hop (vLLM's own router does not, nginx and httpx do) turns into
# an open route; the front must match the path as sent, never forward a normalised one.
TRAVERSALS = ["/v1/../tokenize", "/v1/completions/../../metrics", "//tokenize", "/v1/%2e%2e/tokenize",
              "/v1/models/%2e%2e/%2e%2e/metrics", "/v1/models%2f..%2f..%2fmetrics", "/v1//models", "/V1/models",
              "/v1/models/", "/health/../metrics", "/./metrics", "/v1/./completions", "/%761/models",
              "http://127.0.0.1:1/tokenize", "/v1/models;/../../tokenize", "/v1/models%00/../../metrics"]

ROUTES_SCRIPT = """
import json, os, typing, warnings
warnings.simplefilter("ignore")
os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # the dev routes too: /sleep, /collective_rpc, /reset_prefix_cache...
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.entrypoints.openai.api_server import build_app
from vllm.tasks import SupportedTask
from vllm.utils.argparse_utils import FlexibleArgumentParser
args = make_arg_parser(FlexibleArgumentParser()).parse_args(
    ["--model", "m", "--api-key", "k", "--enable-tokenizer-info-endpoint", "--enable-server-load-tracking"])
app = build_app(args, supported_tasks=typing.get_args(SupportedTask))
print(json.dumps(sorted({(m, r.path) for r in app.routes for m in (getattr(r, "methods", None) or {"GET", "POST"})
                         if m != "HEAD"})))
"""


@pytest.fixture(scope="module")
def vllm_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the real vLLM app object, path parameters filled in."""
    if importlib.util.find_spec("vllm") is None:
        if os.environ.get("VLLM_COMPANION_REQUIRE_REAL") == "1":
            pytest.fail("vllm is not installed but VLLM_COMPANION_REQUIRE_REAL=1")
        pytest.skip("vllm not installed")
    out = subprocess.run([sys.executable, "-c", ROUTES_SCRIPT], capture_output=True, text=True, timeout=240)
    routes = [(m, p.replace("{response_id}", "x")) for m, p in json.loads(out.stdout.strip().splitlines()[-1])]
    assert {"/tokenize", "/metrics", "/invocations", "/scale_elastic_ep"} <= {p for _, p in routes}
    return routes


class OpenEngine(FakeBackend):
    """An engine as vLLM is (#58144): the key is checked under /v1 only, every other route answers.
    Records what reached it."""

    def __init__(self, key: str) -> None:
        super().__init__(model="fake-model")
        self.api_key = key
        self.reached: list[tuple[str, str, dict[str, str]]] = []
        self.front_pid = 0  # the front before it, and where that front logs
        self.front_log = Path()

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        self.reached.append((method, path, dict(self._headers)))
        if (method, path) in EDITOR_ROUTES:
            return await super()._route(method, path, body, reader, writer)
        return await _send_json(writer, 200, {"served": path})


async def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def spawn(argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, **kwargs)


@pytest.fixture
async def front(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[OpenEngine, int, str]]:
    """The real front process before an open engine: (engine, front's port, clients' key);
    parametrised indirectly, the front's extra command-line options."""
    key, internal = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    engine = await OpenEngine(internal).start()
    port, engine.front_log = dead_port(), tmp_path / "front.log"
    env = {**os.environ, "VLLM_COMPANION_FRONT_KEY": key, "VLLM_COMPANION_FRONT_UPSTREAM_KEY": internal}
    with engine.front_log.open("wb") as log:
        proc = spawn([sys.executable, "-m", "vllm_companion.engine.front", "--host", "127.0.0.1", "--port",
                      str(port), "--upstream", f"http://127.0.0.1:{engine.port}", *getattr(request, "param", [])],
                     env, stderr=log)
    engine.front_pid = proc.pid
    try:
        await wait_listening(port)
        yield engine, port, key
    finally:
        proc.terminate()
        proc.wait(10)
        await engine.stop()


async def raw(port: int, method: str, target: str, key: str | None = None, body: bytes = b"",
              declared: int | None = None) -> int:
    """The status for a request sent byte for byte (httpx would normalise ``..`` in the path);
    ``declared``: the Content-Length to claim (the body itself may not follow)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {key}\r\n" if key is not None else ""
    length = len(body) if declared is None else declared
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: team\r\n{auth}Content-Type: application/json\r\n"
                 f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    status = (await asyncio.wait_for(reader.readline(), 10)).split()[1]
    writer.close()
    return int(status)


def reached_only_editor_routes(engine: OpenEngine) -> None:
    assert {(m, p) for m, p, _ in engine.reached} <= EDITOR_ROUTES, engine.reached


async def test_no_vllm_or_router_route_answers_without_the_key(front: Any, vllm_routes: Any) -> None:
    engine, port, key = front
    wrong = secrets.token_urlsafe(32)  # the same length as the real one
    assert len(wrong) == len(key)
    for method, path in [*vllm_routes, *ROUTER_ROUTES]:
        assert await raw(port, method, path) == 401, (method, path)
        assert await raw(port, method, path, wrong) == 401, (method, path)
        assert await raw(port, method, path, key[:-1]) == 401, (method, path)
        if (method, path) not in EDITOR_ROUTES:  # and with the key, nothing but the editor routes
            assert await raw(port, method, path, key) == 404, (method, path)
    assert engine.reached == []  # not one request without the key got through
    reached_only_editor_routes(engine)


async def test_encoded_or_dotted_paths_are_not_forwarded(front: Any) -> None:
    engine, port, key = front
    for target in TRAVERSALS:
        for method in ("GET", "POST"):
            assert await raw(port, method, target, key, b"{}") in (400, 404), (method, target)
    reached_only_editor_routes(engine)
    assert engine.reached == []


async def test_the_key_only_as_bearer_and_not_forwarded(front: Any) -> None:
    engine, port, key = front
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/v1/models", headers={"Authorization": f"Basic {key}"})).status_code == 401
        assert (await http.get(f"/v1/models?api_key={key}")).status_code == 401
        assert (await http.get("/v1/models", headers={"X-Api-Key": key})).status_code == 401
        ok = await http.get("/v1/models", headers={"Authorization": f"Bearer {key}", "Connection": "keep-alive, te",
                                                   "TE": "trailers", "Proxy-Authorization": "Basic secret",
                                                   "X-Forwarded-For": "10.0.0.1", "Cookie": "s=1",
                                                   "X-Request-Id": "another-members-request"})
        assert ok.status_code == 200 and ok.json()["data"][0]["id"] == "fake-model"
    (_, _, headers), = engine.reached
    assert headers["authorization"] == f"Bearer {engine.api_key}" and key not in json.dumps(headers)
    # x-request-id: vLLM aborts every request sharing an external id, so a reused one cancels others
    assert not {"te", "proxy-authorization", "x-forwarded-for", "cookie", "x-request-id"} & set(headers)
    assert "te" not in headers.get("connection", "")


async def test_oversized_or_endless_bodies_are_refused(front: Any) -> None:
    engine, port, key = front
    assert await raw(port, "POST", "/v1/completions", key, b'{"prompt": "', declared=(4 << 20) + 1) == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(5):
            yield b"y" * (1 << 20)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        resp = await http.post("/v1/chat/completions", content=chunks(), headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 413
    assert engine.reached == []


async def test_streams_pass_chunk_by_chunk_and_a_client_that_leaves_stops_the_engine(front: Any) -> None:
    engine, port, key = front
    engine.script = [Reply(chunks=["a", "b", "c", "d"], delay_s=0.4), Reply(chunks=["x"], loop="y", delay_s=0.05)]
    body = {"model": "fake-model", "prompt": "def f(", "stream": True}
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        began, arrivals = time.monotonic(), []
        async with http.stream("POST", "/v1/completions", json=body, headers=auth) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            async for _ in resp.aiter_raw():
                arrivals.append(time.monotonic() - began)
        assert arrivals[0] < 1.0 < arrivals[-1]  # the first token came long before the last
        async with http.stream("POST", "/v1/chat/completions", json={**body, "messages": []}, headers=auth) as resp:
            async for _ in resp.aiter_raw():
                break  # the editor moves on (a new keystroke)
    await wait_for(lambda: engine.requests[-1].client_closed)  # vLLM aborts a request whose client left


# -- with the key: what one member can make the shared engine do (engine/front_limits.py) ------
COMPLETIONS, CHAT = "/v1/completions", "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]


async def ask(port: int, key: str, path: str, body: dict[str, Any] | bytes) -> httpx.Response:
    """One request through the front, the body as JSON (or these bytes as they are)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        return await http.post(path, content=content, headers={**_auth(key), "Content-Type": "application/json"})


async def refused(front: Any, path: str, body: dict[str, Any] | bytes, says: str) -> None:
    """The front answers 400 saying ``says``, and the engine sees nothing."""
    engine, port, key = front
    before = len(engine.requests)
    answer = await ask(port, key, path, body)
    assert answer.status_code == 400 and says in answer.json()["error"]["message"], (body, answer.text)
    assert len(engine.requests) == before, engine.requests[-1].body


async def reached(front: Any, path: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
    """The body as the engine got it (the front answered what the engine did)."""
    engine, port, key = front
    before = len(engine.requests)
    answer = await ask(port, key, path, body)
    assert answer.status_code == 200, answer.text
    assert len(engine.requests) == before + 1
    return engine.requests[-1].body


async def test_many_choices_in_one_request_are_refused(front: Any) -> None:
    for path, base in ((COMPLETIONS, {"prompt": "x"}), (CHAT, {"messages": MESSAGES})):
        for field, value in (("n", 2), ("n", 1000), ("best_of", 64), ("n", 2.0), ("n", True)):
            await refused(front, path, {**base, field: value}, field)
        assert (await reached(front, path, {**base, "n": 1}))["n"] == 1


async def test_an_endless_generation_is_capped_at_the_fronts_limit(front: Any) -> None:
    from vllm_companion.engine.front_limits import MAX_TOKENS

    huge = 10**9
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "max_tokens": huge}))["max_tokens"] == MAX_TOKENS
    chat = await reached(front, CHAT, {"messages": MESSAGES, "max_completion_tokens": huge, "min_tokens": huge})
    assert chat["max_completion_tokens"] == chat["min_tokens"] == MAX_TOKENS
    # none given: vLLM gives a chat the whole context (llama.cpp a completion too); a completion gets OpenAI's 16
    assert (await reached(front, CHAT, {"messages": MESSAGES}))["max_tokens"] == MAX_TOKENS
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "max_tokens": None}))["max_tokens"] == 16
    await refused(front, COMPLETIONS, {"prompt": "x", "max_tokens": "1e9"}, "max_tokens must be an integer")


@pytest.mark.parametrize("front", [["--max-tokens", "64"]], indirect=True)
async def test_the_cap_comes_from_the_fronts_command_line(front: Any) -> None:
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "max_tokens": 65}))["max_tokens"] == 64
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "max_tokens": 10}))["max_tokens"] == 10
    assert (await reached(front, CHAT, {"messages": MESSAGES}))["max_tokens"] == 64


async def test_a_member_cannot_jump_the_queue_with_a_negative_priority(front: Any) -> None:
    from vllm_companion.completion.warm import WARM_PRIORITY

    assert (await reached(front, COMPLETIONS, {"prompt": "x", "priority": -(2**62)}))["priority"] == 0
    # lower runs first: waiting longer (an editor's chat, its warm-ups) stays the member's choice
    assert (await reached(front, CHAT, {"messages": MESSAGES, "priority": WARM_PRIORITY}))["priority"] == WARM_PRIORITY
    await refused(front, COMPLETIONS, {"prompt": "x", "priority": "-1"}, "priority must be an integer")


async def test_whole_vocabulary_or_prompt_logprobs_are_refused(front: Any) -> None:
    for path, body in ((COMPLETIONS, {"prompt": "x", "logprobs": -1}), (COMPLETIONS, {"prompt": "x", "logprobs": 6}),
                       (CHAT, {"messages": MESSAGES, "logprobs": True, "top_logprobs": -1}),
                       (CHAT, {"messages": MESSAGES, "logprobs": True, "top_logprobs": 20})):
        await refused(front, path, body, "logprobs must be from 0 to 5")
    await refused(front, COMPLETIONS, {"prompt": "x", "prompt_logprobs": -1}, "prompt_logprobs is not accepted")
    await refused(front, CHAT, {"messages": MESSAGES, "prompt_logprobs": 1}, "prompt_logprobs is not accepted")
    await refused(front, COMPLETIONS, {"prompt": "x" * 100_000, "echo": True, "logprobs": 1}, "echo with logprobs")
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "logprobs": 5}))["logprobs"] == 5
    chat = await reached(front, CHAT, {"messages": MESSAGES, "logprobs": True, "top_logprobs": 2})
    assert chat["top_logprobs"] == 2


async def test_a_huge_or_deep_grammar_is_refused_before_the_engine_compiles_it(front: Any) -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string", "pattern": "a+" * 20} for i in range(400)}}
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        deep = {"type": "array", "items": deep}
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": wide}}
    tool = {"type": "function", "function": {"name": "f", "parameters": wide}}
    for path, body in ((COMPLETIONS, {"prompt": "x", "guided_regex": "(a|b)*" * 4000}),
                       (COMPLETIONS, {"prompt": "x", "structured_outputs": {"json": wide}}),
                       (CHAT, {"messages": MESSAGES, "response_format": schema}),
                       (CHAT, {"messages": MESSAGES, "tools": [tool], "tool_choice": "required"}),
                       (CHAT, {"messages": MESSAGES, "structured_outputs": {"json": deep}}),
                       (COMPLETIONS, {"prompt": "x", "guided_json": {"a": "x" * 9000}, "guided_grammar": "y" * 9000})):
        await refused(front, path, body, "compiles them into a grammar")
    small = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert (await reached(front, CHAT, {"messages": MESSAGES, "response_format": small}))["response_format"] == small


async def test_fields_that_load_code_or_reach_other_hosts_are_refused(front: Any) -> None:
    for field, value in (("logits_processors", ["os.system"]), ("prompt_embeds", "gASVAAAAAAAAAAA="),
                         ("kv_transfer_params", {"do_remote_prefill": True, "remote_host": "10.0.0.5"}),
                         ("vllm_xargs", {"a": 1}), ("chat_template", "{{ cycler.__init__.__globals__ }}"),
                         ("mm_processor_kwargs", {"a": 1}), ("repetition_detection", {"max_pattern_size": 10**6})):
        await refused(front, CHAT, {"messages": MESSAGES, field: value}, f"{field} is not accepted")


async def test_another_members_request_id_in_the_body_is_not_forwarded(front: Any) -> None:
    # vLLM takes the body's request_id when no X-Request-Id is sent, and aborts every request sharing it
    body = await reached(front, COMPLETIONS, {"prompt": "x", "request_id": "another-members-request"})
    assert "request_id" not in body


async def test_countless_or_endless_stop_strings_are_refused(front: Any) -> None:
    for stop in ([f"s{i}" for i in range(17)], ["x" * 257], "x" * 257, [1], 5):
        await refused(front, COMPLETIONS, {"prompt": "x", "stop": stop}, "stop")
    await refused(front, COMPLETIONS, {"prompt": "x", "stop_token_ids": list(range(301))}, "stop_token_ids")
    await refused(front, CHAT, {"messages": MESSAGES, "logit_bias": {str(i): 1 for i in range(301)}}, "logit_bias")
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "stop": ["\n\n", "def "]}))["stop"] == ["\n\n", "def "]


async def test_a_batch_of_prompts_in_one_request_is_refused(front: Any) -> None:
    for prompt in (["a", "b"], [[1, 2], [3]], ["a"] * 1000):
        await refused(front, COMPLETIONS, {"prompt": prompt}, "one prompt per request")
    assert (await reached(front, COMPLETIONS, {"prompt": [1, 2, 3]}))["prompt"] == [1, 2, 3]
    assert (await reached(front, COMPLETIONS, {"prompt": ["a"]}))["prompt"] == ["a"]


async def test_media_urls_in_messages_are_refused(front: Any) -> None:
    """The engine fetches an image or audio URL itself: from inside the team's network."""
    for part in ({"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data/"}},
                 {"type": "audio_url", "audio_url": {"url": "http://10.0.0.1/"}}, {"type": "image_embeds"}, "text"):
        await refused(front, CHAT, {"messages": [{"role": "user", "content": [part]}]}, "only text")
    text = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert (await reached(front, CHAT, {"messages": text}))["messages"] == text


async def test_fields_the_engine_does_not_know_are_dropped(front: Any) -> None:
    """vLLM ignores them; llama.cpp's n_predict or grammar would bypass the caps."""
    body = await reached(front, COMPLETIONS, {"prompt": "x", "n_predict": -1, "grammar": "root ::= x*",
                                              "cache_prompt": True, "max_tokens": 8})
    assert body == {"prompt": "x", "max_tokens": 8}


async def test_duplicate_keys_mean_to_the_engine_what_they_meant_to_the_front(front: Any) -> None:
    await refused(front, COMPLETIONS, b'{"prompt": "x", "n": 1, "n": 8}', "n must be 1")
    body = await reached(front, COMPLETIONS, b'{"prompt": "x", "max_tokens": 1, "max_tokens": 999999999}')
    assert body["max_tokens"] == 4096


async def test_malformed_or_deeply_nested_bodies_are_refused(front: Any) -> None:
    engine, _, _ = front
    for raw_body, says in ((b"[" * 200_000, "nested too deeply"), (b'{"prompt": NaN}', "NaN is not JSON"),
                           (b'{"prompt": "x", "max_tokens": ' + b"9" * 5000 + b"}", "not valid JSON"),
                           (b"\xff\xfe", "not valid JSON"), (b"[1]", "a JSON object"), (b"", "not valid JSON"),
                           (b'{"tools": ' + b"[" * 900 + b"]" * 900 + b"}", "levels")):
        await refused(front, COMPLETIONS, raw_body, says)
    assert engine.requests == []


async def test_stream_options_hold_only_their_flags(front: Any) -> None:
    for options in ({"include_usage": "yes"}, {"include_usage": True, "x": 1}, ["include_usage"]):
        await refused(front, CHAT, {"messages": MESSAGES, "stream_options": options}, "stream_options")
    body = await reached(front, CHAT, {"messages": MESSAGES, "stream_options": {"include_usage": True}})
    assert body["stream_options"] == {"include_usage": True}


async def test_an_editors_own_requests_pass_unchanged(front: Any) -> None:
    """What our language server sends (sampling.py, the warm-up's user) reaches the engine as it was."""
    from vllm_companion.completion.warm import WARM_USER
    from vllm_companion.config import ChatSettings, CompletionSettings
    from vllm_companion.repetition import LoopHealth
    from vllm_companion.sampling import chat_params, completion_params

    completion = {"model": "fake-model", "prompt": "def f(", "stream": True, "user": "u",
                  **completion_params(CompletionSettings(), ("\n\n",), priority=True, prompt="def f(")}
    assert await reached(front, COMPLETIONS, completion) == completion
    chat = {"messages": MESSAGES, "stream": True, "continue_final_message": True, "add_generation_prompt": False,
            **chat_params(ChatSettings(), "fake-model", 1.1, LoopHealth(), priority=2)}
    assert await reached(front, CHAT, chat) == chat
    engine, port, key = front
    warm = {**completion, "user": WARM_USER, "max_tokens": 1}
    assert (await ask(port, key, COMPLETIONS, warm)).status_code == 200 and engine.warms[-1].body == warm


async def test_a_large_body_is_checked_and_forwarded_whole(front: Any) -> None:
    from vllm_companion.engine.front_limits import INLINE

    prompt = "x = 1\n" * ((3 << 20) // 6)  # ~3 MiB: parsed in a thread, off the event loop
    assert len(prompt) > INLINE
    assert (await reached(front, COMPLETIONS, {"prompt": prompt, "max_tokens": 4}))["prompt"] == prompt


async def test_a_number_past_floats_range_or_a_lone_surrogate_is_a_400_not_a_crash(front: Any) -> None:
    """1e999 parses as inf and "\\ud800" as a lone surrogate: neither can be written back as JSON
    (the front answered 500, with a traceback in its log, for each)."""
    for raw_body in (b'{"prompt": "x", "temperature": 1e999}', b'{"prompt": "x", "seed": -1E400}',
                     b'{"prompt": "\\ud800"}', b'{"messages": [{"role": "user", "content": "\\udfff"}]}'):
        await refused(front, CHAT if b"messages" in raw_body else COMPLETIONS, raw_body, "cannot be forwarded")
    _, port, key = front
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        assert (await http.get("/v1/models", headers=_auth(key))).status_code == 200


async def test_echo_in_any_spelling_cannot_ask_for_the_prompts_logprobs(front: Any) -> None:
    """vLLM reads echo laxly (1, "yes", "true" are true) and turns it into prompt_logprobs: on a
    completion from ``logprobs`` (0 too), on a chat from ``top_logprobs``, which defaults to 0."""
    for body in ({"prompt": "x", "echo": 1, "logprobs": 5}, {"prompt": "x", "echo": "yes", "logprobs": 5},
                 {"prompt": "x", "echo": True, "logprobs": 0}, {"prompt": "x", "echo": True, "logprobs": False}):
        await refused(front, COMPLETIONS, body, "echo")
    for body in ({"messages": MESSAGES, "echo": True}, {"messages": MESSAGES, "echo": "on", "top_logprobs": 0}):
        await refused(front, CHAT, body, "echo")
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "echo": True}))["echo"] is True
    assert (await reached(front, CHAT, {"messages": MESSAGES, "echo": False, "logprobs": True}))["echo"] is False


async def test_a_text_part_with_a_uuid_cannot_carry_a_media_url_or_embeddings(front: Any) -> None:
    """vLLM 0.32 (renderers/chat_utils.py) reads a part that has a ``uuid`` by its keys, not its
    type: {"type": "text", "uuid": ..., "image_url": URL} is an image the engine fetches."""
    for extra in ({"image_url": "http://169.254.169.254/latest/meta-data/"},
                  {"image_url": {"url": "http://10.0.0.1/"}}, {"audio_url": "http://10.0.0.1/a.wav"},
                  {"video_url": "http://10.0.0.1/v.mp4"}, {"prompt_embeds": 1, "data": "gASVAAAAAAAAAAA="}):
        for part in ({"type": "text", "text": "a", "uuid": "u", **extra}, {"type": "refusal", "refusal": "a", **extra}):
            await refused(front, CHAT, {"messages": [{"role": "tool", "content": [part]}]}, "only text")


async def test_a_zero_negative_or_chat_only_budget_is_not_unlimited_on_llamacpp(front: Any) -> None:
    """llama-cpp-python (a team engine on a CPU) generates to the end of the context when
    ``max_tokens`` is 0, negative or absent from a chat, and does not know max_completion_tokens."""
    for path, base in ((COMPLETIONS, {"prompt": "x"}), (CHAT, {"messages": MESSAGES})):
        for field, value in (("max_tokens", 0), ("max_tokens", -1), ("max_completion_tokens", 0)):
            await refused(front, path, {**base, field: value}, f"{field} must be at least 1")
    chat = await reached(front, CHAT, {"messages": MESSAGES, "max_completion_tokens": 10**9})
    assert chat["max_tokens"] == chat["max_completion_tokens"] == 4096
    chat = await reached(front, CHAT, {"messages": MESSAGES, "max_completion_tokens": 7})
    assert chat["max_tokens"] == chat["max_completion_tokens"] == 7


async def test_costly_bodies_do_not_stall_other_members_requests(front: Any) -> None:
    """json.loads holds the GIL: a large body parsed in a thread still stopped the front's event
    loop for the whole parse (measured: 3 MiB of 900-deep lists, ~0.8 s a body, every other
    member's stream and request waiting). Checked in another process, the loop answers meanwhile."""
    engine, port, key = front
    unit = b"[" * 900 + b"]" * 900
    costly = b'{"prompt": "x", "x_ignored": [' + b",".join([unit] * ((3 << 20) // len(unit))) + b"]}"
    started = time.perf_counter()
    json.loads(costly)
    parse_s = time.perf_counter() - started
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, headers=_auth(key)) as http:
        posts = [asyncio.ensure_future(http.post(COMPLETIONS, content=costly)) for _ in range(3)]
        await asyncio.sleep(0.2)  # sent: being checked
        waits = []
        while not all(p.done() for p in posts):
            started = time.perf_counter()
            assert (await http.get("/v1/models")).status_code == 200
            waits.append(time.perf_counter() - started)
        assert [p.result().status_code for p in posts] == [200] * 3
    assert waits and max(waits) < max(0.25, parse_s / 3), (parse_s, waits)
    checkers = [pid for pid in processes_under(engine.front_pid) if pid != engine.front_pid]
    assert checkers and all(key.encode() not in environ(pid) for pid in checkers)
    os.kill(engine.front_pid, signal.SIGKILL)  # no clean-up of the front's runs: the checkers go with it
    await wait_for(lambda: not any(running(pid) for pid in checkers), 10)


def environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (whoever adopts an orphan may be slow to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


async def test_endless_bad_words_are_refused(front: Any) -> None:
    """vLLM compares every bad word's tokens with the output at every step, for the whole batch."""
    await refused(front, COMPLETIONS, {"prompt": "x", "bad_words": ["w" * 100_000]}, "bad_words")
    await refused(front, CHAT, {"messages": MESSAGES, "bad_words": [1]}, "bad_words")
    assert (await reached(front, COMPLETIONS, {"prompt": "x", "bad_words": ["eval("]}))["bad_words"] == ["eval("]


# -- before the key: what a client can make the front spend (engine/front_http.py) -------------
# Each case was measured on the front as first built (uvicorn + httptools, no head limits).
SMUGGLING = {  # framings a proxy before the front may read otherwise (RFC 9112 6.1, 5.2, 2.2)
    "both lengths": b"POST /v1/completions HTTP/1.1\r\nHost: team\r\n%sContent-Length: 4\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /tokenize HTTP/1.1\r\nHost: team\r\n\r\n",
    "two lengths": b"POST /v1/completions HTTP/1.1\r\nHost: team\r\n%sContent-Length: 2\r\n"
                   b"Content-Length: 40\r\n\r\n{}",
    "chunked last but one": b"POST /v1/completions HTTP/1.1\r\nHost: team\r\n%sTransfer-Encoding: chunked, identity\r\n"
                            b"\r\n2\r\n{}\r\n0\r\n\r\n",
    "folded header": b"GET /v1/models HTTP/1.1\r\nHost: team\r\nX-Session-ID: a\r\n b\r\n%s\r\n",
    "bare LF": b"GET /v1/models HTTP/1.1\nHost: team\n%s\n",
}


def rss_kib(pid: int) -> int:
    return next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:"))


async def exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` as is; what comes back before the front closes (b"" if it reset the
    connection: closing with unread bytes does); no close within ``timeout`` fails."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        async with asyncio.timeout(timeout):
            return await reader.read()
    except ConnectionError:
        return b""
    finally:
        writer.close()


def closed(connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> int:
    return sum(1 for reader, _ in connections if reader.at_eof() or reader.exception() is not None)


async def test_request_smuggling_framings_are_refused(front: Any) -> None:
    engine, port, key = front
    auth = f"Authorization: Bearer {key}\r\n".encode()
    for name, template in SMUGGLING.items():
        data = template % (auth.replace(b"\r", b"") if name == "bare LF" else auth)
        assert (await exchange(port, data)).startswith(b"HTTP/1.1 400 "), name
    folded_key = b"GET /v1/models HTTP/1.1\r\nHost: team\r\nAuthorization: Bearer\r\n " + key.encode() + b"\r\n\r\n"
    assert (await exchange(port, folded_key)).startswith(b"HTTP/1.1 400 ")
    assert engine.reached == []


async def test_endless_or_countless_request_headers_are_refused_before_the_key(front: Any) -> None:
    engine, port, _ = front
    before = rss_kib(engine.front_pid)
    countless = b"GET /v1/models HTTP/1.1\r\nHost: team\r\n" + b"a:\r\n" * 16384 + b"\r\n"  # one read, 64 KiB
    answer = await exchange(port, countless)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:40]  # httptools: 401, all parsed
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/models HTTP/1.1\r\nHost: team\r\nX-Session-ID: ")
    with pytest.raises(ConnectionError):  # one header value that never ends: cut off
        async with asyncio.timeout(30):
            for _ in range(64):
                writer.write(b"a" * (1 << 20))
                await writer.drain()
    writer.close()
    assert rss_kib(engine.front_pid) - before < 32 << 10  # httptools: 1.1 GB for 40 MB of header lines
    assert engine.reached == []


async def test_pipelined_requests_never_read_do_not_grow_the_front(front: Any) -> None:
    engine, port, _ = front
    before = rss_kib(engine.front_pid)
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.transport.pause_reading()  # the answers (401) are never read
    batch = b"GET /tokenize HTTP/1.1\r\nHost: team\r\n\r\n" * 5000
    try:
        for _ in range(60):
            writer.write(batch)
            await asyncio.wait_for(writer.drain(), 3)
    except (TimeoutError, ConnectionError):
        pass  # the front stopped reading: what it should do
    assert rss_kib(engine.front_pid) - before < 32 << 10  # httptools: 320 MB
    # left open, its answer stuck: the fixture's SIGTERM must still stop the front within 10 s


async def test_idle_or_trickling_connections_cannot_hold_the_front(front: Any) -> None:
    from vllm_companion.engine.front_http import HEAD_S, MAX_CONNECTIONS

    _, port, key = front
    trickler = await asyncio.open_connection("127.0.0.1", port)
    trickler[1].write(b"GET /v1/models HTTP/1.1\r\n")
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS + 20)]
    await asyncio.sleep(1)
    assert closed(idle) >= 20  # beyond the cap, closed at once: the descriptors stay the front's
    deadline = time.monotonic() + HEAD_S + 5
    while time.monotonic() < deadline and closed([trickler, *idle]) <= len(idle):
        with contextlib.suppress(ConnectionError):
            trickler[1].write(b"X")  # a header byte a second, as slowloris does
        await asyncio.sleep(1)
    assert closed([trickler]) and closed(idle) == len(idle)  # no head within HEAD_S: closed
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/v1/models", headers=_auth(key))).status_code == 200
    for _, writer in [trickler, *idle]:
        writer.close()


async def test_one_address_cannot_take_every_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from vllm_companion.engine import front_http

    monkeypatch.setattr(front_http, "_loopback", lambda host: False)  # as if every client came from afar

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("no request is sent")

    port = dead_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=front_http.Http, ws="none",
                                           lifespan="off", log_level="error"))
    serving = asyncio.create_task(server.serve())
    try:
        await wait_listening(port)
        await asyncio.sleep(0.2)  # the probe's connection is gone
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(front_http.MAX_PER_PEER + 5)]
        await asyncio.sleep(0.5)
        assert closed(held) == 5
        for _, writer in held:
            writer.close()
    finally:
        server.should_exit = True
        await serving


async def test_clients_without_a_key_cannot_flood_the_front_log(front: Any) -> None:
    engine, port, _ = front
    for _ in range(500):
        await exchange(port, b"NOT HTTP\r\n\r\n", timeout=2)
    lines = engine.front_log.read_text().splitlines()
    assert len(lines) < 100, lines[-3:]  # uvicorn: one line per malformed request, in a file nothing rotates


def test_the_language_server_starts_without_the_fronts_dependencies() -> None:
    """uvicorn and starlette come with vLLM, not with us: an editor on a remote endpoint has neither."""
    script = ("import sys; sys.modules.update(starlette=None, uvicorn=None, h11=None)\n"
              "import vllm_companion.app, vllm_companion.engine.manager, vllm_companion.cli_engine")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


# -- the whole service ------------------------------------------------------------------------
def processes_under(root: int) -> dict[int, bytes]:
    """``root`` and its descendants, with their command lines (NUL-separated, as the kernel has them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        todo += children.get(pid, [])
    return found


async def test_a_team_server_exposes_only_the_front(tmp_path: Path) -> None:
    port = dead_port()
    os.environ["FAKE_ENGINE_ARGS"] = str(tmp_path / "starts.jsonl")
    os.environ["FAKE_ENGINE_BODIES"] = str(tmp_path / "bodies.jsonl")
    try:
        key = secrets.token_urlsafe(32)
        (tmp_path / "key").write_text(key + "\n")  # the key from a file, never a command line
        started = cli(tmp_path, "engine", "start", "--api-key-file", str(tmp_path / "key"), "--host", "127.0.0.1",
                      "--port", str(port), "--device", "cpu", "--model", "fake-model", "--team-max-tokens", "32")
        assert started.returncode == 0, started.stderr
        record = json.loads((tmp_path / "cache" / "run" / "engine.json").read_text())
        engine_argv = json.loads((tmp_path / "starts.jsonl").read_text().splitlines()[-1])
        assert engine_argv[engine_argv.index("--host") + 1] == "127.0.0.1"
        assert f":{port}/" not in record["endpoint"] and record["frontUrl"] == f"http://127.0.0.1:{port}/v1"
        assert record["apiKey"] != key  # the engine has a key of its own; the team's stays with the front
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            # the fake engine, like vLLM, serves /tokenize without a key: the front does not
            assert (await http.post("/tokenize", json={"prompt": "x"})).status_code == 401
            assert (await http.post("/tokenize", json={"prompt": "x"}, headers=_auth(key))).status_code == 404
            assert (await http.get("/v1/models", headers=_auth(key))).status_code == 200
            assert (await http.get("/health", headers=_auth(key))).status_code == 200
            chat = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            answer = await http.post("/v1/chat/completions", json=chat, headers=_auth(key))
            assert answer.status_code == 200 and "ready_engine_answer" in answer.text
        # engine start's --team-max-tokens reached the front: a chat with no budget got that one
        assert json.loads((tmp_path / "bodies.jsonl").read_text().splitlines()[-1])["max_tokens"] == 32
    finally:
        os.environ.pop("FAKE_ENGINE_ARGS", None)
        os.environ.pop("FAKE_ENGINE_BODIES", None)
        stopped = cli(tmp_path, "engine", "stop")
    assert stopped.returncode == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # the front went with the engine


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_team_fleets_router_admin_routes_are_not_reachable(tmp_path: Path) -> None:
    if importlib.util.find_spec("vllm_router") is None:
        pytest.skip("vllm-router not installed (pip install 'vllm-companion[fleet]')")
    port = dead_port()
    try:
        started = cli(tmp_path, "engine", "start", "--replicas", "2", "--team", "--port", str(port), "--device",
                      "cpu", "--model", "fake-model")
        assert started.returncode == 0, started.stderr
        key = (tmp_path / "cache" / "run" / "team.key").read_text().strip()
        router = json.loads((tmp_path / "cache" / "run" / "engine.json").read_text())["endpoint"].removesuffix("/v1")
        async with httpx.AsyncClient(timeout=30) as http:
            before = (await http.get(f"{router}/list_workers")).json()["urls"]
            for method, path in ROUTER_ROUTES:
                assert await raw(port, method, path) == 401, path
                assert await raw(port, method, path, key) == 404, path
            assert (await http.get(f"{router}/list_workers")).json()["urls"] == before
            assert (await http.get(f"http://127.0.0.1:{port}/v1/models", headers=_auth(key))).status_code == 200
    finally:
        cli(tmp_path, "engine", "stop")


async def test_foreground_honours_api_key_and_keeps_it_off_every_command_line(tmp_path: Path) -> None:
    port, key = dead_port(), "team-" + secrets.token_urlsafe(24)
    env = {**os.environ, "VLLM_COMPANION_CACHE": str(tmp_path / "cache"),
           "VLLM_COMPANION_ENGINE_COMMAND": json.dumps(FAKE)}
    env.pop("VLLM_COMPANION_ENGINE_KEY", None)
    service = spawn([sys.executable, "-m", "vllm_companion", "engine", "start", "--foreground", "--api-key", key,
                     "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--model", "fake-model"], env,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert service.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(service.stdout.readline), 60)
        assert line.decode().strip() == f"http://127.0.0.1:{port}/v1"  # the front, where the team connects
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/v1/models", headers=_auth(key))).status_code == 200  # the key given
            assert (await http.get("/v1/models")).status_code == 401
        started = processes_under(service.pid)
        assert len(started) >= 5  # the service, two guards, the engine, the front
        assert not [cmd for cmd in started.values() if key.encode() in cmd]
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)


def test_the_team_settings_default_cap_is_the_fronts_own() -> None:
    from vllm_companion.config import EngineSettings
    from vllm_companion.engine.front_limits import MAX_TOKENS

    assert EngineSettings().team_max_tokens == MAX_TOKENS


# -- a plan's next-edit process behind the same front (engine/front_route.py) ---------------------
NEXT_EDIT_ONLY_ROUTES = ["/tokenize", "/detokenize", "/metrics", "/invocations", "/pooling", "/classify", "/score",
                         "/v1/embeddings", "/v1/responses", "/v1/audio/transcriptions", "/scale_elastic_ep", "/version",
                         "/load", "/ping", "/sleep", "/wake_up", "/reset_prefix_cache", "/collective_rpc"]


async def test_a_member_reaches_nothing_of_the_next_edit_process_but_generation_and_its_listing(
        tmp_path: Path) -> None:
    from tests.e2e.test_team_next_edit import SWEEP, team_front

    beside = OpenEngine(secrets.token_urlsafe(8))
    beside.model = SWEEP
    async with team_front(tmp_path / "front.log", beside=beside) as team:
        named = json.dumps({"model": SWEEP, "prompt": "x"}).encode()
        for path in [*NEXT_EDIT_ONLY_ROUTES, *(p for _, p in ROUTER_ROUTES), *TRAVERSALS]:
            for method in ("GET", "POST"):
                assert await raw(team.port, method, path, team.key, named) in (400, 404), (method, path)
        assert await raw(team.port, "GET", "/health", team.key) == 200  # the completion engine's
        assert await raw(team.port, "GET", "/v1/models", team.key) == 200
        assert await raw(team.port, "POST", "/v1/completions", team.key, named) == 200
        assert {(m, p) for m, p, _ in beside.reached} == {("GET", "/v1/models"), ("POST", "/v1/completions")}


async def test_only_the_exact_next_edit_name_is_routed_to_its_process(tmp_path: Path) -> None:
    from tests.e2e.test_team_next_edit import COMPLETIONS, SWEEP, team_front

    confusable = SWEEP.replace("e", "\u0435")  # Cyrillic ie
    near = [SWEEP.upper(), SWEEP + " ", " " + SWEEP, SWEEP + "\u200b", SWEEP + "\x00", confusable,
            "\uff53" + SWEEP[1:], SWEEP[:-1], SWEEP * 2000, [SWEEP], {"id": SWEEP}, {SWEEP: SWEEP}, 1, True, None]
    async with team_front(tmp_path / "front.log") as team:
        for model in near:
            answer = await team.post(COMPLETIONS, {"model": model, "prompt": "x"})
            assert answer.status_code == 200, (model, answer.text)  # the completion engine's answer
        assert team.beside.requests == [] and len(team.main.requests) == len(near)
        lone = await team.post(COMPLETIONS, {"model": "\ud800" + SWEEP, "prompt": "x"})
        assert lone.status_code == 400  # not Unicode: vLLM could not read it as the front did
        # what the engine reads is what the front read: JSON escapes and a repeated key decode alike
        escaped = b'{"model": "\\u0073' + SWEEP[1:].encode() + b'", "prompt": "x"}'
        twice = b'{"model": "other", "prompt": "x", "model": "' + SWEEP.encode() + b'"}'
        for body in (escaped, twice):
            assert (await team.post(COMPLETIONS, body)).status_code == 200
        assert [r.body["model"] for r in team.beside.requests] == [SWEEP, SWEEP]
        reversed_twice = b'{"model": "' + SWEEP.encode() + b'", "prompt": "x", "model": "other"}'
        assert (await team.post(COMPLETIONS, reversed_twice)).status_code == 200
        assert team.main.requests[-1].body["model"] == "other" and len(team.beside.requests) == 2


async def test_the_next_edit_processes_answers_pass_through_the_same_bounds(tmp_path: Path) -> None:
    from tests.e2e.test_team_next_edit import COMPLETIONS, SWEEP, team_front

    async with team_front(tmp_path / "front.log") as team:
        team.beside.script = [Reply(chunks=["a", "b", "c"], delay_s=0.4), Reply(chunks=["x"], loop="y", delay_s=0.05),
                              Reply(status=429, headers={"Retry-After": "3", "Set-Cookie": "s=1", "X-Internal": "k"})]
        body, auth = {"model": SWEEP, "prompt": "x", "stream": True}, _auth(team.key)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{team.port}", timeout=30) as http:
            began, arrivals = time.monotonic(), []
            async with http.stream("POST", COMPLETIONS, json=body, headers=auth) as resp:
                async for _ in resp.aiter_raw():
                    arrivals.append(time.monotonic() - began)
            assert arrivals[0] < 0.8 < arrivals[-1]  # chunk by chunk, not buffered
            async with http.stream("POST", COMPLETIONS, json=body, headers=auth) as resp:
                async for _ in resp.aiter_raw():
                    break  # the member moves on: the next-edit process must stop generating
            await wait_for(lambda: team.beside.requests[-1].client_closed)
            refused = await http.post(COMPLETIONS, json=body, headers=auth)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "3"
        assert "set-cookie" not in refused.headers and "x-internal" not in refused.headers
        assert {r.headers["authorization"] for r in team.beside.requests} == {f"Bearer {team.beside.api_key}"}


class HostileListing(FakeBackend):
    """A next-edit process whose model listing is oversized, or names models it does not route."""

    def __init__(self, model: str, listing: bytes) -> None:
        super().__init__(model=model)
        self.listing = listing

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        if path != "/v1/models":
            return await super()._route(method, path, body, reader, writer)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                     % (len(self.listing), self.listing))
        await writer.drain()
        return True


async def test_the_next_edit_processes_listing_adds_its_one_model_or_nothing(tmp_path: Path) -> None:
    from tests.e2e.test_team_next_edit import COMPLETION_MODEL, SWEEP, team_front
    from vllm_companion.engine.front_route import MAX_LISTING

    cards = [{"id": "evil/other-model"}, {"id": COMPLETION_MODEL, "max_model_len": 1}, {"id": SWEEP, "x": 1}]
    listings = {json.dumps({"data": cards}).encode(): [COMPLETION_MODEL, SWEEP],
                json.dumps({"data": [{"id": SWEEP, "pad": "p" * MAX_LISTING}]}).encode(): [COMPLETION_MODEL],
                b"[" * 30_000 + b"]" * 30_000: [COMPLETION_MODEL], b"not json": [COMPLETION_MODEL]}
    for listing, expected in listings.items():
        async with team_front(tmp_path / "front.log", beside=HostileListing(SWEEP, listing)) as team:
            listed = (await team.get("/v1/models")).json()["data"]
            assert [m["id"] for m in listed] == expected, listing[:80]
            assert listed[0].get("max_model_len") == 4096  # the completion engine's card, untouched


# -- another user takes a port of ours while its process is down (engine/port_owner.py) ------------
# A stranger: another local user's server on the port, which prints each request head it receives.
# argv: the port, then the address (default 127.0.0.1; one with a colon is IPv6), then "v6only".
STRANGER = """
import socket, sys
host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[3:] == ["v6only"]:
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
server.bind((host, int(sys.argv[1])))
server.listen()
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    head = conn.recv(65536)
    print(repr(head), flush=True)
    body = b'{"data": [{"id": "stranger"}], "choices": [{"text": "stolen"}]}'
    conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n%s"
                 % (len(body), body))
    conn.close()
"""
STRANGER_PYTHON = "/usr/bin/python3"  # another user cannot run ours (it is under /root)


@contextlib.contextmanager
def stranger_on(port: int, *where: str) -> Any:
    """Another user (``nobody``) listening on ``port`` (at ``where``: an address, then "v6only";
    127.0.0.1 when none); yields its process (stdout: what it got)."""
    proc = subprocess.Popen([STRANGER_PYTHON, "-c", STRANGER, str(port), *where], stdout=subprocess.PIPE,
                            user=65534, group=65534, cwd="/")
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"listening\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def stranger_got(proc: subprocess.Popen[bytes]) -> bytes:
    proc.kill()
    out, _ = proc.communicate(10)
    return out


needs_another_user = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(STRANGER_PYTHON),
                                        reason="runs a server as another user (nobody): needs root")


@needs_another_user
async def test_another_user_on_the_next_edit_port_gets_neither_the_engine_key_nor_the_code(tmp_path: Path) -> None:
    """The next-edit process's port is fixed (engine/launch.py); while it restarts or after it gave
    up, another user binds it. The front sent that stranger every member's next-edit request with
    the engine's own key in ``Authorization``, and relayed its answer (and its listing) as ours."""
    from tests.e2e.test_team_next_edit import COMPLETION_MODEL, COMPLETIONS, SWEEP, team_front

    async with team_front(tmp_path / "front.log") as team:
        await team.beside.stop()
        with stranger_on(team.beside.port) as stranger:
            asked = await team.post(COMPLETIONS, {"model": SWEEP, "prompt": "SECRET_CODE = 1"})
            listed = await team.get("/v1/models")
            got = stranger_got(stranger)
        assert team.beside.api_key.encode() not in got and b"SECRET_CODE" not in got, got
        assert got == b""
        assert asked.status_code == 503 and "stolen" not in asked.text
        assert [m["id"] for m in listed.json()["data"]] == [COMPLETION_MODEL]
        assert team.main.requests == []


@needs_another_user
async def test_another_user_on_the_engines_port_gets_neither_the_engine_key_nor_the_code(tmp_path: Path) -> None:
    """The same for the completion engine's internal port, fixed behind the front too (launch.py)."""
    from tests.e2e.test_team_next_edit import COMPLETION_MODEL, COMPLETIONS, team_front

    async with team_front(tmp_path / "front.log") as team:
        await team.main.stop()
        with stranger_on(team.main.port) as stranger:
            asked = await team.post(COMPLETIONS, {"model": COMPLETION_MODEL, "prompt": "SECRET_CODE = 1"})
            listed, health = await team.get("/v1/models"), await team.get("/health")
            got = stranger_got(stranger)
        assert got == b"", got
        assert asked.status_code == 502 and listed.status_code == 502 and health.status_code == 502
        await team.main.start(team.main.port)  # ours again on that port: served again
        assert (await team.post(COMPLETIONS, {"model": COMPLETION_MODEL, "prompt": "x"})).status_code == 200


@needs_another_user
async def test_another_user_beside_our_listener_on_other_addresses_does_not_cut_the_team_off(tmp_path: Path) -> None:
    """Another user may bind our engine's port on 127.0.0.2, ``::1`` or a ``V6ONLY`` ``::`` while
    ours holds 127.0.0.1 (the kernel allows it). Counting every listener on the port, the front
    then answered every request 502/503 and the supervisor, whose probe asks the same ``owned``,
    restarted a healthy engine in a loop: a local denial of service by one bind."""
    from tests.e2e.test_team_next_edit import COMPLETION_MODEL, COMPLETIONS, SWEEP, team_front
    from vllm_companion.engine.port_owner import owned

    async with team_front(tmp_path / "front.log") as team:
        main, beside = team.main.port, team.beside.port
        with stranger_on(main, "127.0.0.2") as a, stranger_on(main, "::", "v6only") as b, \
                stranger_on(beside, "::1") as c:
            assert owned(main) and owned(beside)  # the supervisor's probe (supervisor.py `_ours`)
            asked = await team.post(COMPLETIONS, {"model": COMPLETION_MODEL, "prompt": "SECRET_CODE = 1"})
            nexted = await team.post(COMPLETIONS, {"model": SWEEP, "prompt": "SECRET_CODE = 2"})
            got = [stranger_got(s) for s in (a, b, c)]
        assert asked.status_code == 200 and nexted.status_code == 200, (asked.text, nexted.text)
        assert len(team.main.requests) == 1 and len(team.beside.requests) == 1
        assert got == [b"", b"", b""], got


@needs_another_user
def test_another_users_dual_stack_listener_on_our_down_port_is_still_refused() -> None:
    """With no IPv4 listener of ours, another user's ``::`` (dual-stack) or ``::ffff:127.0.0.1``
    socket takes 127.0.0.1's connections: it still counts, though the tables cannot tell it from a
    ``V6ONLY`` one (engine/port_owner.py)."""
    from vllm_companion.engine.port_owner import owned

    for where in (("::",), ("::ffff:127.0.0.1",), ("0.0.0.0",)):
        port = dead_port()
        with stranger_on(port, *where):
            assert not owned(port), where


async def test_a_hung_next_edit_listing_does_not_hold_every_members_model_list(tmp_path: Path) -> None:
    """A next-edit process that accepts but never answers /v1/models (stuck, overloaded) held
    every member's GET /v1/models for the front's 10 s: past an editor's own 5 s listing limit
    (backend/listing.py), so every editor on the team lost the endpoint."""
    from tests.e2e.test_team_next_edit import COMPLETION_MODEL, SWEEP, team_front
    from vllm_companion.engine.front_route import BESIDE_LISTING_S

    hung = FakeBackend(model=SWEEP)
    hung.models_hang = True
    async with team_front(tmp_path / "front.log", beside=hung) as team:
        began = time.monotonic()
        listed = await team.get("/v1/models")
        took = time.monotonic() - began
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["data"]] == [COMPLETION_MODEL]
    assert took < BESIDE_LISTING_S + 1.5, took
