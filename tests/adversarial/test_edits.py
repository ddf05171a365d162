"""Inline edits cannot land on the wrong text (issue 19, point 6).

The user keeps typing while the model rewrites a selection: each case sends ``didChange`` while
the fake engine holds its answer (gated until the server has taken the changes), then checks the
edit the server returns by applying it to the text the editor has now. Real server over stdio.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import converters, types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, open_doc, options, raw_request, session, wait_for
from vllm_companion.chat.rebase import rebase
from vllm_companion.documents import LOG, UTF16, Change, Document

SOURCE = "import os\nimport sys\n\n\ndef total(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n"
SELECTED = "    t = 0\n    for x in xs:\n        t += x\n    return t\n"  # rows 5-8
SELECTION = {"start": {"line": 5, "character": 0}, "end": {"line": 9, "character": 0}}
REWRITE = "    return sum(xs)\n"
RequestFailed = -32803


def at(line: int, character: int = 0) -> dict[str, int]:
    return {"line": line, "character": character}


def apply(text: str, rng: dict[str, Any], new_text: str) -> str:
    """What an editor does with one text edit (ASCII text: columns are characters)."""
    lines = text.splitlines(keepends=True)

    def offset(pos: dict[str, int]) -> int:
        return sum(len(line) for line in lines[: pos["line"]]) + pos["character"]

    return text[: offset(rng["start"])] + new_text + text[offset(rng["end"]) :]


class Editor:
    """One open document as the editor holds it, its changes sent as the editor sends them."""

    def __init__(self, client: Any, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
        self.client, self.backend = client, backend
        self.uri, _ = open_doc(client, SOURCE + "█")
        self.text, self.version = SOURCE, 1
        self.applied: list[Any] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def on_apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.applied.append(converters.get_converter().unstructure(params))
            return types.ApplyWorkspaceEditResult(applied=True)

        backend.script = [Reply(chunks=["Here:\n```python\n", REWRITE, "```\n"])]
        self.release = asyncio.Event()
        generate = backend._generate

        async def gated(*args: Any) -> bool:  # the model "writes" until the test has typed
            await self.release.wait()
            return await generate(*args)

        monkeypatch.setattr(backend, "_generate", gated)

    def type(self, start: dict[str, int], end: dict[str, int], text: str, whole: bool = False) -> None:
        self.text, self.version = apply(self.text, {"start": start, "end": end}, text), self.version + 1
        change: Any = types.TextDocumentContentChangeWholeDocument(text=self.text) if whole else \
            types.TextDocumentContentChangePartial(range=types.Range(
                start=types.Position(**start), end=types.Position(**end)), text=text)
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[change]))

    async def edit_while(self, typing: Any, **extra: Any) -> Any:
        """Ask for the edit; once the engine has the prompt, ``typing(self)``; then let it answer."""
        params = {"textDocument": {"uri": self.uri}, "range": SELECTION, "instruction": "use sum()",
                  "apply": True, **extra}
        pending = asyncio.ensure_future(self.client.protocol.send_request_async("vllmCompanion/edit", params))
        await wait_for(lambda: self.backend.generation_requests())
        typing(self)
        await raw_request(self.client, "textDocument/codeAction", {  # answered after the changes above
            "textDocument": {"uri": self.uri}, "range": {"start": at(0), "end": at(0)}, "context": {"diagnostics": []}})
        self.release.set()
        return as_dict(await asyncio.wait_for(pending, 10))

    async def refused(self, typing: Any) -> str:
        with pytest.raises(Exception) as failed:
            await self.edit_while(typing)
        assert getattr(failed.value, "code", None) == RequestFailed, failed.value
        assert self.applied == []
        return str(failed.value)

    def landed(self, result: dict[str, Any]) -> str:
        (change,) = result["edit"]["documentChanges"]
        assert change["textDocument"] == {"uri": self.uri, "version": self.version}
        assert self.applied and self.applied[0]["edit"] == result["edit"]
        (edit,) = change["edits"]
        assert edit["newText"] == REWRITE
        return apply(self.text, edit["range"], edit["newText"])


@pytest.mark.parametrize("whole", [False, True], ids=["incremental", "whole-text client"])
async def test_lines_typed_above_the_selection_cannot_redirect_the_edit(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch, whole: bool) -> None:
    def typing(ed: Editor) -> None:
        ed.type(at(0), at(0), "import json\nimport re\n", whole)
        ed.type(at(5), at(5), "# helpers\n", whole)

    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        result = await ed.edit_while(typing)
        after = ed.landed(result)
    assert result["applied"] is True
    assert after == ed.text.replace(SELECTED, REWRITE)
    assert after.startswith("import json\nimport re\nimport os\nimport sys\n")
    assert result["edit"]["documentChanges"][0]["edits"][0]["range"] == {"start": at(8), "end": at(12)}


@pytest.mark.parametrize("change", [
    (at(6, 4), at(6, 4), "# "),                    # typed inside the selection
    (at(8, 0), at(9, 0), ""),                      # its last line deleted
    (at(4, 0), at(6, 0), "def total(xs): t = 0\n"),  # a change across its start
    (at(6, 0), at(6, 0), "WHOLE"),                 # a whole-text client typing inside
], ids=["inside", "last line deleted", "across its start", "whole-text inside"])
async def test_an_edit_of_text_changed_while_the_model_wrote_is_refused(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch, change: tuple[Any, Any, str]) -> None:
    start, end, text = change
    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        message = await ed.refused(lambda e: e.type(start, end, text, whole=text == "WHOLE"))
    assert "changed" in message and "while the model wrote" in message and "nothing was applied" in message


async def test_an_edit_carries_the_version_it_was_computed_for(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    def keystrokes(ed: Editor) -> None:  # a comment typed at the very start of the selection, key by key
        for i, key in enumerate("# sum\n"):
            ed.type(at(5, i), at(5, i), key)

    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        result = await ed.edit_while(keystrokes)
        after = ed.landed(result)
    assert ed.version == 7
    assert after == SOURCE.replace(SELECTED, "# sum\n" + REWRITE)


async def test_a_range_taken_on_an_older_version_is_refused(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        ed.type(at(0), at(0), "import json\n")
        params = {"textDocument": {"uri": ed.uri, "version": 1}, "range": SELECTION, "instruction": "use sum()"}
        with pytest.raises(Exception) as failed:
            await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/edit", params), 10)
    assert getattr(failed.value, "code", None) == RequestFailed
    assert "version 1" in str(failed.value) and "version 2" in str(failed.value)
    assert backend.generation_requests() == []


@pytest.mark.parametrize("reopen", [False, True], ids=["closed", "closed and reopened"])
async def test_a_document_closed_while_the_model_wrote_gets_no_edit(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch, reopen: bool) -> None:
    def close(ed: Editor) -> None:
        ed.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=ed.uri)))
        if reopen:  # same text, a new life: its versions start again
            ed.client.text_document_did_open(types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=ed.uri, language_id="python", version=1, text=SOURCE)))

    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        message = await ed.refused(close)
    assert "closed while the model wrote" in message and "nothing was applied" in message


async def test_edits_below_the_selection_leave_its_range(backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    def below(ed: Editor) -> None:
        ed.type(at(9), at(9), "\n\nprint(total([1, 2]))\n")
        ed.type(at(11, 5), at(11, 5), "(")

    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        result = await ed.edit_while(below)
        after = ed.landed(result)
    assert result["edit"]["documentChanges"][0]["edits"][0]["range"] == SELECTION
    assert after == ed.text.replace(SELECTED, REWRITE)
    assert ed.version == 3


def test_more_changes_than_the_log_holds_refuse_the_edit() -> None:
    doc = Document.from_text("file:///w/a.py", "python", 1, SOURCE)
    (start, end), taken = doc.span(types.Position(5, 0), types.Position(9, 0), UTF16), doc.changes
    for _ in range(LOG):
        doc.apply_change(Change("#", types.Range(types.Position(0, 0), types.Position(0, 0))), UTF16)
    assert rebase(doc, taken, start, end, SELECTED) == (start, end)  # typed above, on another line
    doc.apply_change(Change("#", types.Range(types.Position(0, 0), types.Position(0, 0))), UTF16)
    assert rebase(doc, taken, start, end, SELECTED) is None  # the log no longer reaches back
