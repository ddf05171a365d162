"""Malformed messages, unknown methods, the completion fallback, settings sources."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, raw_request, session, wait_for


async def test_invalid_params_get_an_error_answer(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        with pytest.raises(Exception, match=r"nvalid params|-32602"):
            await raw_request(client, types.TEXT_DOCUMENT_INLINE_COMPLETION, {"bogus": 1})
        with pytest.raises(Exception, match=r"nvalid params|-32602"):
            await raw_request(client, types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": 7, "position": "x"})
        backend.script = [Reply(chunks=["1"])]
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "1"


async def test_unknown_method_gets_method_not_found(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        with pytest.raises(Exception, match=r"(?i)not found|-32601"):
            await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/noSuchThing", {}), 5)


async def test_non_json_body_does_not_kill_the_server(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        stdin = client._server.stdin  # type: ignore[union-attr]
        garbage = b"{not json at all"
        stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(garbage), garbage))
        binary = bytes(range(256))
        stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(binary), binary))
        await stdin.drain()
        backend.script = [Reply(chunks=["alive"])]
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "alive"


async def test_binary_and_unknown_documents_get_no_completion(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "\x00\x01\x02ELF█\x00\x00", language="plaintext")
        assert await inline(client, uri, pos) is None
        result = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri="file:///never-opened.py"),
                position=types.Position(line=0, character=0),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
            )
        )
        assert result is None
    assert backend.generation_requests() == []


async def test_completion_fallback_for_clients_without_inline_completion(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["ute_total(items)\n"])
    async with session(options(backend.url), capabilities="neovim") as client:
        assert client.init_result.capabilities.completion_provider is not None
        uri, pos = open_doc(client, "total = comp█\n")
        result = await client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
        )
    assert isinstance(result, types.CompletionList) and result.items
    item = result.items[0]
    assert item.label == "compute_total(items)"
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.new_text == "compute_total(items)"
    assert item.text_edit.range.start.character == len("total = ")
    assert item.text_edit.range.end == pos


async def test_bad_settings_are_reported_once_and_initialize_succeeds(backend: FakeBackend) -> None:
    opts = {"backend": {"endpoint": backend.url}, "completion": {"debounceMs": "soon", "maxTokens": -1}}
    async with session(opts) as client:
        assert client.init_result.capabilities.inline_completion_provider is not None
        await wait_for(lambda: any("settings" in m.message for m in client.messages))
        assert sum("settings" in m.message for m in client.messages) == 1
        backend.script = [Reply(chunks=["1"])]
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "1"


async def test_workspace_configuration_and_did_change_configuration(backend: FakeBackend) -> None:
    # The endpoint is the user's own (initializationOptions): a workspace may not choose it (issue 19).
    config = {"completion": {"debounceMs": 0, "disabledLanguages": ["rust"]}}
    async with session({"backend": {"endpoint": backend.url}}, configuration=config) as client:
        uri, pos = open_doc(client, "let x = █;\n", language="rust")
        await asyncio.sleep(0.3)  # let the server pull workspace/configuration
        assert await inline(client, uri, pos) is None
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"vllmCompanion": {**config, "completion": {"debounceMs": 0}}})
        )
        backend.script = [Reply(chunks=["5"])]
        await wait_for(lambda: True)
        await asyncio.sleep(0.2)
        assert await inline(client, uri, pos) == "5"
    assert len(backend.generation_requests()) == 1


async def test_environment_variables_configure_the_backend(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["env"])]
    async with session({"completion": {"debounceMs": 0}}, env={"VLLM_COMPANION_ENDPOINT": backend.url}) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "env"
