"""Inline completion end to end: real server over stdio, fake engine on a real socket."""

from __future__ import annotations

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session


async def test_capabilities_advertise_inline_completion_and_sync(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        caps = client.init_result.capabilities
        assert caps.inline_completion_provider is not None
        assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
        assert caps.position_encoding == types.PositionEncodingKind.Utf16
        # VS Code has inline completion: no duplicate suggest-widget items
        assert caps.completion_provider is None


async def test_completion_is_offered_and_the_fim_prompt_is_sent(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["a + ", "b\n"])]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, "def add(a, b):\n    return █\n\nprint(add(1, 2))\n")
        assert await inline(client, uri, pos) == "a + b"
    (req,) = backend.generation_requests()
    assert req.body["prompt"] == (
        "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>"
    )
    assert "suffix" not in req.body
    assert req.body["stream"] is True
    assert "<|endoftext|>" in req.body["stop"]
