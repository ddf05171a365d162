"""Chat and inline edit over LSP, end to end against the fake engine."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import (
    as_dict,
    capture_partials,
    chat_request,
    open_doc,
    options,
    raw_request,
    session,
    wait_for,
)


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], "partialResultToken": "t1", **extra}


async def test_partial_results_arrive_in_order_and_make_the_answer(backend: FakeBackend) -> None:
    pieces = ["Use ", "`sorted()`", " with ", "a key:\n```python\n", "sorted(xs, key=len)\n```"]
    backend.script = [Reply(chunks=pieces, delay_s=0.01)]
    async with session(options(backend.url)) as client:
        partials = capture_partials(client)
        result = as_dict(await chat_request(client, ask("How do I sort by length?")))
        await wait_for(lambda: "".join(partials.get("t1", [])) == "".join(pieces))
    assert result["content"] == "".join(pieces)
    assert result["finishReason"] == "stop"
    assert result["model"] == backend.model
    assert result["endpoint"] == "chat"
    (req,) = backend.generation_requests()
    assert req.path == "/v1/chat/completions"
    assert req.body["messages"][0]["role"] == "system"
    assert req.body["messages"][-1] == {"role": "user", "content": "How do I sort by length?"}


async def test_cancel_stops_the_engine_and_returns_the_partial_answer(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=[f"word{i} " for i in range(500)], delay_s=0.02)]
    async with session(options(backend.url)) as client:
        capture_partials(client)
        fut = asyncio.wrap_future(
            client.protocol.send_request("vllmCompanion/chat", ask("Tell me a long story"), msg_id="chat-1")
        )
        await wait_for(lambda: backend.requests and backend.requests[-1].chunks_sent >= 5)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="chat-1"))
        result = as_dict(await asyncio.wait_for(fut, 5))
        await wait_for(lambda: backend.requests[-1].ended is not None, timeout=1.5)
    assert result["finishReason"] == "cancelled"
    assert result["content"].startswith("word0 word1")
    assert backend.requests[-1].client_closed
    assert backend.requests[-1].chunks_sent < 100


async def test_template_error_falls_back_to_completions_with_our_template(backend: FakeBackend) -> None:
    backend.model = "HuggingFaceTB/SmolLM2-135M-Instruct"
    backend.chat_status = 400
    backend.chat_error_body = "Cannot use chat template functions because tokenizer.chat_template is not set"
    backend.default = Reply(chunks=["Hello", " there"])
    async with session(options(backend.url)) as client:
        capture_partials(client)
        first = as_dict(await chat_request(client, ask("hi")))
        second = as_dict(await chat_request(client, ask("again")))
        assert any("chat template" in m.message for m in client.messages)
    assert first["content"] == "Hello there" and first["endpoint"] == "completions"
    assert second["endpoint"] == "completions"
    paths = [r.path for r in backend.requests if r.path.startswith("/v1/") and "completions" in r.path]
    assert paths == ["/v1/chat/completions", "/v1/completions", "/v1/completions"]  # fallback remembered
    prompt = backend.requests[1].body["prompt"]
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert "<|im_end|>" in backend.requests[1].body["stop"]


async def test_history_is_trimmed_to_a_small_model_length(backend: FakeBackend) -> None:
    backend.max_model_len = 600
    backend.default = Reply(chunks=["ok"])
    history = []
    for i in range(30):
        history.append({"role": "user", "content": f"question {i} " + "x" * 200})
        history.append({"role": "assistant", "content": "a" * 200})
    history.append({"role": "user", "content": "the latest question"})
    async with session(options(backend.url)) as client:
        capture_partials(client)
        await chat_request(client, {"messages": history, "maxTokens": 100})
    sent = backend.generation_requests()[0].body["messages"]
    assert sent[0]["role"] == "system"
    assert sent[-1]["content"] == "the latest question"
    assert 1 < len(sent) < 10
    assert "question 29" in sent[-3]["content"]  # the newest turns are the ones kept
    assert sum(len(m["content"]) for m in sent) < 600 * 3


async def test_secret_files_never_reach_the_engine(backend: FakeBackend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    backend.default = Reply(chunks=["ok"])
    secret = tmp_path / ".env"
    secret.write_text("API_TOKEN=sk-very-secret-123\n")
    private = tmp_path / "private.conf"
    private.write_text("password=hunter2-secret\n")
    async with session(options(backend.url) | {"chat": {"excludeGlobs": ["*.conf"]}}) as client:
        capture_partials(client)
        env_uri, _ = open_doc(client, "API_TOKEN=sk-very-secret-123\n█", language="dotenv", name=".env")
        code_uri, _ = open_doc(client, "def f():\n    return 1\n█", name="code.py")
        context = {"currentFile": code_uri, "files": [env_uri, secret.as_uri(), private.as_uri()]}
        result = as_dict(await chat_request(client, ask("what is in my files?", context=context)))
    body = str([r.body for r in backend.requests])
    assert "sk-very-secret" not in body and "hunter2" not in body
    assert "return 1" in body
    assert set(result["excludedContext"]) == {env_uri, secret.as_uri(), private.as_uri()}


async def test_edit_returns_a_workspace_edit_with_utf16_positions(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["Here is the code:\n```python\n", "    total = sum(x * 2 for x in xs)  # 🚀\n",
                                    "    return total\n```\nThis doubles."])]
    doc = "def f(xs):\n    total = 0  # 🚀\n    for x in xs: total += x * 2\n    return total\n"
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, doc + "█")
        rng = {"start": {"line": 1, "character": 0}, "end": {"line": 4, "character": 0}}
        params = {"textDocument": {"uri": uri}, "range": rng, "instruction": "use sum()"}
        result = as_dict(await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/edit", params), 10))
    (change,) = result["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": uri, "version": 1}
    (edit,) = change["edits"]
    assert edit["range"] == rng
    assert edit["newText"] == "    total = sum(x * 2 for x in xs)  # 🚀\n    return total\n"
    prompt = backend.generation_requests()[0].body["messages"][-1]["content"]
    assert "total = 0  # 🚀\n    for x in xs" in prompt and "use sum()" in prompt


async def test_code_actions_on_a_selection(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "x = 1\ny = 2\n█")
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 5}}
        params = {"textDocument": {"uri": uri}, "range": rng, "context": {"diagnostics": []}}
        # raw: lsprotocol's client-side converter mis-reads CodeAction | Command unions
        actions = as_dict(await raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, params))
        empty = {**params, "range": {"start": rng["start"], "end": rng["start"]}}
        assert await raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, empty) is None
    # "Edit with instruction…" needs an instruction a plain LSP client cannot ask for: it is
    # offered only to clients that can prompt (tests/e2e/test_actions.py runs it there).
    assert [a["title"] for a in actions] == [
        "vLLM Companion: Explain", "vLLM Companion: Fix", "vLLM Companion: Write tests",
    ]
    fix = actions[1]
    assert fix["kind"] == "quickfix"
    assert fix["command"]["command"] == "vllmCompanion.fix"
    # the instruction left to the client; the version; which opening of the document
    assert fix["command"]["arguments"][:4] == [uri, rng, None, 1]
    assert isinstance(fix["command"]["arguments"][4], int)


async def test_explain_command_answers_through_chat(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["It assigns one."])
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "x = 1\n█")
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}
        result = as_dict(await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="vllmCompanion.explain", arguments=[uri, rng])
        ))
        await wait_for(lambda: any("assigns one" in m.message for m in client.messages))
    assert result["content"] == "It assigns one."
    assert "x = 1" in backend.generation_requests()[0].body["messages"][-1]["content"]


async def test_chat_loop_is_cut_and_marked(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["Sure:\n"], loop="I will repeat this sentence.\n", delay_s=0.001)]
    async with session(options(backend.url)) as client:
        capture_partials(client)
        result = as_dict(await chat_request(client, ask("go")))
    assert result["finishReason"] == "loop-cut"
    assert result["content"] == "Sure:\nI will repeat this sentence."
    assert backend.requests[-1].client_closed and backend.requests[-1].chunks_sent < 10


@pytest.mark.parametrize("bad", [{}, {"messages": []}, {"messages": [{"role": "wizard", "content": 1}]}])
async def test_bad_chat_params_get_invalid_params(backend: FakeBackend, bad: dict[str, object]) -> None:
    async with session(options(backend.url)) as client:
        with pytest.raises(Exception, match=r"(?i)invalid params"):
            await chat_request(client, bad)


async def test_dead_engine_gives_request_failed(backend: FakeBackend) -> None:
    from tests.fake_backend import dead_port

    async with session(options(f"http://127.0.0.1:{dead_port()}/v1")) as client:
        with pytest.raises(Exception, match=r"(?i)unavailable|cannot reach"):
            await chat_request(client, ask("hello?"))


async def test_chat_model_from_the_request_or_settings(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["ok"])
    async with session(options(backend.url) | {"chat": {"model": "chat-model-from-settings"}}) as client:
        capture_partials(client)
        await chat_request(client, ask("a"))
        await chat_request(client, ask("b", model="chat-model-from-request"))
    models = [r.body["model"] for r in backend.generation_requests()]
    assert models == ["chat-model-from-settings", "chat-model-from-request"]
