"""Prompts per family, the FIM-token check, budgets on a 5 MB file, UTF-16/UTF-8 positions."""

from __future__ import annotations

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session
from vllm_companion.prompts import FAMILIES
from vllm_companion.tokens import estimate_tokens

MODELS = {
    "qwen2.5-coder": "Qwen/Qwen2.5-Coder-1.5B",
    "deepseek-coder": "deepseek-ai/deepseek-coder-1.3b-base",
    "codeqwen1.5": "Qwen/CodeQwen1.5-7B",
    "starcoder2": "bigcode/starcoder2-3b",
    "codellama": "codellama/CodeLlama-7b-hf",
    "codestral": "mistralai/Codestral-22B-v0.1",
    "plain": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
async def test_each_family_gets_its_own_prompt_and_stops(backend: FakeBackend, family) -> None:  # type: ignore[no-untyped-def]
    backend.model = MODELS[family.name]
    backend.script = [Reply(chunks=["1"])]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "x = █\ny = 2\n")
        assert await inline(client, uri, pos) == "1"
    (req,) = backend.generation_requests()
    for token in family.fim_tokens:
        assert token in req.body["prompt"]
    if not family.is_fim:
        assert req.body["prompt"] == "x = "
    assert set(family.stop) <= set(req.body.get("stop") or [])
    assert "suffix" not in req.body


async def test_model_without_fim_tokens_gets_prefix_only_prompt_and_a_warning(backend: FakeBackend) -> None:
    backend.model = "Qwen/Qwen2.5-Coder-7B-Instruct"  # name says coder...
    backend.special_tokens = set()  # ...but the served tokenizer has no FIM tokens
    backend.script = [Reply(chunks=["42"])]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "answer = █\n")
        assert await inline(client, uri, pos) == "42"
        assert any("FIM tokens" in m.message for m in client.messages)
    (req,) = backend.generation_requests()
    assert req.body["prompt"] == "answer = "


async def test_five_megabyte_file_prompt_fits_the_model(backend: FakeBackend) -> None:
    backend.max_model_len = 2048
    backend.default = Reply(chunks=["0"])
    body = "".join(f"def function_{i}(a, b):\n    return a * {i} + b  # 宇宙\n\n" for i in range(120_000))
    assert len(body.encode()) > 5_000_000
    async with session(options(backend.url, maxTokens=128)) as client:
        uri, _ = open_doc(client, body + "x = █\n" + body)
        for line in (0, 180_000, 360_000, 720_002):
            assert await inline(client, uri, types.Position(line=line, character=0)) is not None
    assert len(backend.generation_requests()) == 4
    for req in backend.generation_requests():
        assert estimate_tokens(req.body["prompt"]) <= 2048 - 128
        assert req.body["prompt"].count("<|fim_prefix|>") == 1


async def test_utf16_positions_with_emoji_and_cjk(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["name)"])]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "s = '🚀宇宙' + str(█)\n")
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=pos,
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        )
    assert pos.character == 17  # 16 code points; 🚀 counts 2 UTF-16 units
    (req,) = backend.generation_requests()
    assert req.body["prompt"].startswith("<|fim_prefix|>s = '🚀宇宙' + str(<|fim_suffix|>)")
    assert result is not None
    item = result.items[0]
    assert item.insert_text == "name"  # the closing paren is already there
    assert item.range.start == pos and item.range.end == pos


async def test_utf8_position_encoding_when_the_client_prefers_it(backend: FakeBackend) -> None:
    from tests.lsp_session import client_capabilities_for

    caps = client_capabilities_for("visual-studio-code")
    caps.general = types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf8])
    backend.script = [Reply(chunks=["1"])]
    async with session(options(backend.url), capabilities=caps) as client:
        assert client.init_result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
        text = "v = '宇' + █\n"
        uri, _ = open_doc(client, text)
        byte_col = len("v = '宇' + ".encode())
        assert await inline(client, uri, types.Position(line=0, character=byte_col)) == "1"
    (req,) = backend.generation_requests()
    assert "v = '宇' + <|fim_suffix|>" in req.body["prompt"]


async def test_selected_completion_info_extends_the_suggest_widget_choice(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=[".join(base, name)"])]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "import os\nfull = os.pa█\n")
        selected = types.SelectedCompletionInfo(
            range=types.Range(start=types.Position(line=1, character=10), end=pos), text="path"
        )
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=pos,
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic, selected_completion_info=selected
                ),
            )
        )
    (req,) = backend.generation_requests()
    assert req.body["prompt"].split("<|fim_suffix|>")[0].endswith("full = os.path")
    assert result is not None
    item = result.items[0]
    assert item.insert_text == "path.join(base, name)"  # starts with the selected item, as VS Code requires
    assert item.range.start == types.Position(line=1, character=10) and item.range.end == pos
