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


def words_reply(body: dict[str, Any]) -> Reply:
    """Chat: numbered words, slowly (continuations go on from where the partial answer ended);
    completion: at once."""
    if "messages" not in body:  # longer than a chat step: the chat sees it running
        return Reply(chunks=["do", "ne"], delay_s=0.15)
    last = body["messages"][-1]
    start = len(last["content"].split()) if body.get("continue_final_message") else 0
    return Reply(chunks=[f"w{i} " for i in range(start, 30)], delay_s=0.05)


async def complete_during_chat(backend: FakeBackend, priority: bool) -> dict[str, Any]:
    """A slow chat answer, and an inline completion once it streams; the chat's result."""
    import asyncio

    backend.default = words_reply
    opts = options(backend.url)
    opts["backend"]["priority"] = priority
    async with session(opts) as client:
        partials = capture_partials(client)
        question = {"messages": [{"role": "user", "content": "count"}], "partialResultToken": "t", "maxTokens": 64}
        chat = asyncio.ensure_future(chat_request(client, question, timeout=20))
        await wait_for(lambda: len(partials.get("t", [])) >= 3)
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "done"
        return dict(as_dict(await chat))


async def test_a_chat_steps_aside_while_a_completion_runs_and_continues(backend: FakeBackend) -> None:
    """Priorities on (a vLLM engine): the chat stream closes for the completion and continues
    from its partial answer (continue_final_message); the answer is whole, in order, once."""
    result = await complete_during_chat(backend, priority=True)
    assert result["content"] == "".join(f"w{i} " for i in range(30)), result
    chats = [s for s in backend.generation_requests() if "messages" in s.body]
    assert len(chats) == 2 and chats[0].client_closed  # stepped aside, then continued
    assert chats[1].body["continue_final_message"] is True and chats[1].body["add_generation_prompt"] is False
    assert chats[1].body["messages"][-1]["role"] == "assistant"
    assert chats[1].body["max_tokens"] == 64 - len(chats[1].body["messages"][-1]["content"].split())


async def test_without_priorities_a_chat_does_not_step_aside(backend: FakeBackend) -> None:
    result = await complete_during_chat(backend, priority=False)
    assert result["content"] == "".join(f"w{i} " for i in range(30))
    assert len([s for s in backend.generation_requests() if "messages" in s.body]) == 1
