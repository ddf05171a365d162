"""Team servers and shared GPUs: gateway headers, and completion ahead of chat through vLLM's
priority scheduling (issue 12), over real stdio against the fake engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.e2e.test_shared_engine import launch_options, ready
from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, capture_partials, chat_request, inline, open_doc, options, session, wait_for


async def test_gateway_headers_go_with_every_request(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["ok"])
    opts = options(backend.url)
    opts["backend"].update(headers={"CF-Access-Client-Id": "id-123", "CF-Access-Client-Secret": "s3cret"},
                           apiKey="team-key")
    async with session(opts) as client:
        capture_partials(client)
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "ok"
        await chat_request(client, {"messages": [{"role": "user", "content": "hi"}], "maxTokens": 8})
    for seen in backend.generation_requests():
        assert seen.headers["cf-access-client-id"] == "id-123"
        assert seen.headers["authorization"] == "Bearer team-key"


async def test_no_priority_is_sent_to_an_engine_we_did_not_start(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["ok"])
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "ok"
    assert "priority" not in backend.generation_requests()[-1].body


async def test_the_launched_engine_schedules_by_priority(tmp_path: Path) -> None:
    """Our vLLM runs with --scheduling-policy priority; completion asks with 0, edit 1, chat 2."""
    env = {"VLLM_COMPANION_CACHE": str(tmp_path / "cache"), "FAKE_ENGINE_ARGS": str(tmp_path / "starts.jsonl")}
    log = tmp_path / "bodies.jsonl"
    async with session(launch_options(), env={**env, "FAKE_ENGINE_BODIES": str(log)}) as client:
        await wait_for(lambda: ready(client), timeout=30)
        capture_partials(client)
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "ready_engine_answer"
        await chat_request(client, {"messages": [{"role": "user", "content": "hi"}], "maxTokens": 8})
    argv = json.loads((tmp_path / "starts.jsonl").read_text().splitlines()[0])
    assert argv[argv.index("--scheduling-policy") + 1] == "priority"
    bodies: list[dict[str, Any]] = [json.loads(x) for x in log.read_text().splitlines()]
    kinds = {("messages" in b): b.get("priority") for b in bodies}
    assert kinds == {False: 0, True: 2}, bodies


assert as_dict and sys  # shared helpers
