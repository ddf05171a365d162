"""Warming on open (issue 20, point 2; completion/warm.py): opening or focusing a document sends
the head of its next completion prompt once, 1 token, so the engine has it in its prefix cache
when the user asks; never twice for a version, never where a completion may not go."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session, wait_for
from vllm_companion.completion.warm import SETTLE_S, WARM_PRIORITY, WARM_USER

CODE = "import os\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\ndef name():\n    return █\n\n\nprint(area(2))\n"
QUIET_S = SETTLE_S + 0.5  # long enough for a warm-up that was going to be sent


def focus(client: object, uri: str) -> None:
    client.protocol.notify("textDocument/didFocus", {"textDocument": {"uri": uri}})  # type: ignore[attr-defined]


def shared(a: str, b: str) -> int:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return n


async def test_opening_a_file_warms_the_head_of_its_next_prompt(backend: FakeBackend) -> None:
    backend.script = [Reply(chunks=["'me'\n"])]
    async with session(options(backend.url)) as client:
        uri, pos = open_doc(client, CODE)
        await wait_for(lambda: backend.warms and backend.warms[0].ended is not None)
        assert backend.requests == []  # a warm-up is not a completion
        assert await inline(client, uri, pos) == "'me'"  # the script was left for the real request
    warm, real = backend.warms[0].body, backend.requests[0].body
    assert (warm["max_tokens"], warm["user"]) == (1, WARM_USER)
    assert "user" not in real and "priority" not in warm  # no priorities unless the engine takes them
    before_cursor = real["prompt"][: real["prompt"].index("<|fim_suffix|>")]
    head = before_cursor[: before_cursor.rindex("\n") + 1]  # every whole line above the cursor
    assert shared(warm["prompt"], real["prompt"]) >= len(head), (warm["prompt"], real["prompt"])
    assert "def name():\n" in head and "print(area(2))" in warm["prompt"]


async def test_one_version_is_warmed_once_and_an_edit_warms_again(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, CODE)
        await wait_for(lambda: len(backend.warms) == 1)
        for _ in range(3):
            focus(client, uri)
            await asyncio.sleep(0.05)
        await asyncio.sleep(QUIET_S)
        assert len(backend.warms) == 1
        change = types.TextDocumentContentChangeWholeDocument(text=CODE.replace("█", "") + "x = 1\n")
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=2), [change]))
        focus(client, uri)
        await wait_for(lambda: len(backend.warms) == 2)
        assert "x = 1" in backend.warms[1].body["prompt"]


async def test_warm_ups_rank_below_every_real_request_when_priorities_are_on(backend: FakeBackend) -> None:
    opts = options(backend.url)
    opts["backend"]["priority"] = True
    async with session(opts) as client:
        open_doc(client, CODE)
        await wait_for(lambda: len(backend.warms) == 1)
    assert backend.warms[0].body["priority"] == WARM_PRIORITY == 3  # chat is 2, completion 0


async def test_no_warm_up_where_no_completion_may_go(backend: FakeBackend) -> None:
    """Switched off, a disabled language, a secret file, a paused server, an empty file."""
    cases = [
        (options(backend.url, warmOnOpen=False), CODE, "a.py"),
        (options(backend.url, disabledLanguages=["python"]), CODE, "b.py"),
        (options(backend.url), CODE, ".env"),
        (options(backend.url, enabled=False), CODE, "c.py"),
        (options(backend.url), "\n\n█", "empty.py"),
    ]
    for opts, text, name in cases:
        async with session(opts) as client:
            open_doc(client, text, name=name)
            await asyncio.sleep(QUIET_S)
        assert backend.warms == [], (name, [w.body for w in backend.warms])
    async with session(options(backend.url)) as client:  # the same file, allowed: warmed (the test can fail)
        open_doc(client, CODE, name="d.py")
        await wait_for(lambda: len(backend.warms) == 1)


def test_a_failed_warm_up_is_not_recorded_and_a_new_connection_warms_again() -> None:
    """Review finding: a warm-up that failed (or a connection since replaced, whose new engine's
    prefix cache is empty) was recorded as done, so the document was never warmed again."""
    import asyncio

    from vllm_companion.backend.errors import BackendError, ErrorKind
    from vllm_companion.completion import warm as w

    class Failing(w.Warmer):
        def __init__(self) -> None:  # only what _warm and reset touch
            from collections import OrderedDict

            self._warmed, self._task, self._pending = OrderedDict(), None, None
            self.turns = type("T", (), {"busy": False})()
            self.health = type("H", (), {"refusal": staticmethod(lambda: None)})()

        async def _request(self, uri: str, version: int) -> None:
            raise BackendError(ErrorKind.TIMEOUT, "no answer")

    warmer = Failing()
    saved, w.SETTLE_S = w.SETTLE_S, 0.0
    try:
        asyncio.run(warmer._warm("file:///w/a.py", 3))
    finally:
        w.SETTLE_S = saved
    assert "file:///w/a.py" not in warmer._warmed
    warmer._warmed["file:///w/b.py"] = 1
    warmer.reset()
    assert not warmer._warmed
