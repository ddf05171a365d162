"""Pause keeps the manual trigger (issue 23): with automatic suggestions off
(``completion.enabled: false``), an invoked request (VS Code's Alt+\\, an explicit trigger) is
still answered, as Copilot's "disable completions" leaves its manual trigger working."""

from __future__ import annotations

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session


async def test_paused_server_answers_an_invoked_request(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["a + b\n"])]
    async with session(options(backend.url, enabled=False)) as client:
        uri, pos = open_doc(client, "def add(a, b):\n    return █\n")
        assert await inline(client, uri, pos, automatic=False) == "a + b"
    assert len(backend.generation_requests()) == 1


async def test_paused_server_offers_nothing_while_typing(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["a + b\n"])]
    async with session(options(backend.url, enabled=False)) as client:
        uri, pos = open_doc(client, "def add(a, b):\n    return █\n")
        assert await inline(client, uri, pos, automatic=True) is None
    assert backend.generation_requests() == []
