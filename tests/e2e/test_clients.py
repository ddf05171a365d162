"""What real clients do that a well-behaved test client does not (found driving Neovim, Emacs
and Vim; see docs/editors/): never answering workspace/configuration, full-text didChange, no
$/cancelRequest, snippet-capable clients."""

from __future__ import annotations

import asyncio
import time

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session


async def test_a_client_that_never_answers_configuration_still_gets_completions(backend: FakeBackend) -> None:
    backend.default = Reply(chunks=["fine"])
    async with session(options(backend.url)) as client:
        answered = asyncio.Event()

        async def configuration(params: types.ConfigurationParams) -> list[object]:
            await asyncio.sleep(4)  # longer than the server waits (3 s): as good as never
            answered.set()
            return []

        client.protocol.fm.features[types.WORKSPACE_CONFIGURATION] = configuration

        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        uri, pos = open_doc(client, "x = █\n")
        t0 = time.monotonic()
        assert await inline(client, uri, pos) == "fine"
        assert time.monotonic() - t0 < 2
        await asyncio.wait_for(answered.wait(), 10)  # let the late answer go before the session ends


async def test_full_text_did_change_and_no_cancel(backend: FakeBackend) -> None:
    """Vim-style clients resend the whole text and never cancel: the newest request wins."""
    backend.default = Reply(chunks=["done"])
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "a = 1\n")
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="a = 1\nb = \n")]))
        answer = await inline(client, uri, types.Position(line=1, character=4))
        assert answer == "done"
        assert "a = 1\nb = <|fim_suffix|>" in backend.generation_requests()[-1].body["prompt"]
