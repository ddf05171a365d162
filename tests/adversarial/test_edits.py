"""Inline edits cannot land on the wrong text (issue 19, point 6).

The user keeps typing while the model rewrites a selection: each case sends ``didChange`` while
the fake engine holds its answer (gated until the server has taken the changes), then checks the
edit the server returns by applying it to the text the editor has now. Real server over stdio.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

import pytest
from lsprotocol import converters, types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, client_capabilities_for, open_doc, options, raw_request, session, wait_for
from vllm_companion.chat.rebase import Anchor
from vllm_companion.chat.service import MAX_EDIT_CHARS
from vllm_companion.documents import UTF16, Change, Document

SOURCE = "import os\nimport sys\n\n\ndef total(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n"
SELECTED = "    t = 0\n    for x in xs:\n        t += x\n    return t\n"  # rows 5-8
SELECTION = {"start": {"line": 5, "character": 0}, "end": {"line": 9, "character": 0}}
REWRITE = "    return sum(xs)\n"
RequestFailed = -32803


def at(line: int, character: int = 0) -> dict[str, int]:
    return {"line": line, "character": character}


def lsp_lines(text: str) -> list[str]:
    """The lines as an editor counts them: LSP ends a line at \\n, \\r\\n or \\r only."""
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+", text)


def offset(text: str, pos: dict[str, int]) -> int:
    """A UTF-16 position as an offset into ``text``."""
    lines = lsp_lines(text)
    if pos["line"] >= len(lines):
        return len(text)
    line, units, col = lines[pos["line"]], 0, 0
    content = line.rstrip("\r\n")
    while col < len(content) and units < pos["character"]:
        units, col = units + (2 if ord(content[col]) > 0xFFFF else 1), col + 1
    return sum(map(len, lines[: pos["line"]])) + col


def position(text: str, off: int) -> dict[str, int]:
    """An offset as a UTF-16 position (inside a "\\r\\n": before it, where an editor puts it)."""
    off -= 0 < off < len(text) and text[off - 1 : off + 1] == "\r\n"
    before = lsp_lines(text[:off])
    row = len(before) - 1 if before and before[-1] == before[-1].rstrip("\r\n") else len(before)
    last = before[row] if row < len(before) else ""
    return at(row, sum(2 if ord(c) > 0xFFFF else 1 for c in last))


def apply(text: str, rng: dict[str, Any], new_text: str) -> str:
    """What an editor does with one text edit."""
    return text[: offset(text, rng["start"])] + new_text + text[offset(text, rng["end"]) :]


class Editor:
    """One open document as the editor holds it, its changes sent as the editor sends them."""

    def __init__(self, client: Any, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch,
                 source: str = SOURCE) -> None:
        self.client, self.backend = client, backend
        self.uri, _ = open_doc(client, source + "█")
        self.text, self.version = source, 1
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

    async def edit_while(self, typing: Any, selection: dict[str, Any] = SELECTION, **extra: Any) -> Any:
        """Ask for the edit; once the engine has the prompt, ``typing(self)``; then let it answer."""
        params = {"textDocument": {"uri": self.uri}, "range": selection, "instruction": "use sum()",
                  "apply": True, **extra}
        pending = asyncio.ensure_future(self.client.protocol.send_request_async("vllmCompanion/edit", params))
        await wait_for(lambda: self.backend.generation_requests())
        typing(self)
        await raw_request(self.client, "textDocument/codeAction", {  # answered after the changes above
            "textDocument": {"uri": self.uri}, "range": {"start": at(0), "end": at(0)}, "context": {"diagnostics": []}})
        self.release.set()
        return as_dict(await asyncio.wait_for(pending, 10))

    def prompt(self) -> str:
        return str(self.backend.generation_requests()[0].body["messages"][-1]["content"])

    async def refused(self, typing: Any, selection: dict[str, Any] = SELECTION) -> str:
        with pytest.raises(Exception) as failed:
            await self.edit_while(typing, selection)
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
    (at(6, 4), at(6, 4), "UNDONE"),                # typed inside, then undone: the same text again
], ids=["inside", "last line deleted", "across its start", "whole-text inside", "typed and undone"])
async def test_an_edit_of_text_changed_while_the_model_wrote_is_refused(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch, change: tuple[Any, Any, str]) -> None:
    start, end, text = change

    def typing(ed: Editor) -> None:
        ed.type(start, end, text, whole=text == "WHOLE")
        if text == "UNDONE":  # positions alone cannot tell an undo from the same text typed elsewhere
            ed.type(start, at(start["line"], start["character"] + len(text)), "")

    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        message = await ed.refused(typing)
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


async def test_form_feeds_and_unicode_line_separators_cannot_shift_the_edit(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """LSP ends lines at \\n, \\r\\n and \\r only; ``str.splitlines`` also at a form feed (GNU
    style page breaks), \\x85 and U+2028 (in JavaScript strings): the server counted more lines than
    the editor, showed the model the lines above the selection and sent the edit to the editor's."""
    above = "import os\x0c\nJS = '\u2028'\n# \x85 \x1c\n\ndef total(xs):\n"  # rows 0-4, as in SOURCE
    source = above + SELECTED[:-1] + "\r\n"
    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch, source)
        result = await ed.edit_while(lambda e: e.type(at(1, 6), at(1, 6), "\u2029"))
        after = ed.landed(result)
        assert SELECTED[:-1] + "\r\n" in ed.prompt()
    assert after == above.replace("'\u2028", "'\u2029\u2028") + REWRITE


async def test_a_crlf_document_with_emoji_follows_typing_around_the_selection(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """UTF-16 columns after astral characters, CRLF lines, typing on the selection's own lines just
    before and after it, and a "\\r" that completes a "\\r\\n" above it (the line count stays)."""
    source = "x = '😀😀'\n\ny = 1\r\nz = '🎉' + total([1])\r\n"
    selection = {"start": at(3, 4), "end": at(4)}  # "'🎉' + total([1])\r\n", to the end of the text

    def typing(ed: Editor) -> None:
        ed.type(at(0, 10), at(0, 10), "\r")                  # "\n" becomes "\r\n": still one line
        ed.type(at(3, 0), at(3, 0), "😀")                    # before it, on its line (2 UTF-16 units)
        ed.type(at(3, 5), at(3, 6), "  ")                    # a change that ends at its start
        ed.type(at(4), at(4), "print(z)\r\n")                # after its end

    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch, source)
        result = await ed.edit_while(typing, selection)
        after = ed.landed(result)
    assert after == "x = '😀😀'\r\n\ny = 1\r\n😀z =  " + REWRITE + "print(z)\r\n"
    assert result["edit"]["documentChanges"][0]["edits"][0]["range"] == {"start": at(3, 7), "end": at(4)}


async def test_a_whole_text_client_pasting_a_copy_above_the_selection_cannot_redirect_the_edit(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function pasted again above itself: lines diffed from the top say the copy is new text
    below, and the edit went to the copy (the user's original stayed); from the bottom, it is new
    text above. Ambiguous: refused."""
    function = "def total(xs):\n" + SELECTED
    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        message = await ed.refused(lambda e: e.type(at(4), at(4), function + "\n", whole=True))
    assert "changed in the edited text" in message


async def test_a_whole_text_client_adding_blank_lines_among_blank_lines_still_moves_the_edit(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        result = await ed.edit_while(lambda e: e.type(at(3), at(3), "\n\n", whole=True))
        after = ed.landed(result)
    assert after == SOURCE.replace("\n\n\n", "\n\n\n\n\n").replace(SELECTED, REWRITE)


@pytest.mark.parametrize("selection", [
    {"start": at(50), "end": at(60)}, {"start": at(60, 3), "end": at(50)}, {"start": at(9), "end": at(9, 4)},
], ids=["past the end", "past the end, end first", "on the line after the last"])
async def test_a_range_past_the_end_edits_nothing_already_there(
        backend: FakeBackend, monkeypatch: pytest.MonkeyPatch, selection: dict[str, Any]) -> None:
    """A range past the end is empty at the end of the text: it took the final line break, which
    the model then rewrote."""
    async with session(options(backend.url)) as client:
        ed = Editor(client, backend, monkeypatch)
        result = await ed.edit_while(lambda e: None, selection)
        assert "Code to rewrite:\n```python\n\n```" in ed.prompt()
    (edit,) = result["edit"]["documentChanges"][0]["edits"]
    assert edit["range"] == {"start": at(9), "end": at(9)}


async def test_a_selection_larger_than_a_model_rewrites_is_refused_before_the_engine(backend: FakeBackend) -> None:
    """Redacting 8 MB held the event loop 3.6 s, for an answer no model can write."""
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "x = 1\n" * (MAX_EDIT_CHARS // 6 + 1) + "█")
        params = {"textDocument": {"uri": uri}, "range": {"start": at(0), "end": at(10**6)}, "instruction": "x"}
        with pytest.raises(Exception) as failed:
            await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/edit", params), 10)
    assert "characters" in str(failed.value)
    assert backend.generation_requests() == []


def test_thousands_of_changes_keep_nothing_and_still_move_the_edit() -> None:
    """Changes are followed while an edit is pending, not logged: any number of them moves the
    edit, and a document nobody edits records nothing (a 512-entry log per document refused the
    edit after 512 keystrokes and held up to 512 entries for every open document)."""
    doc = Document.from_text("file:///w/a.py", "python", 1, SOURCE)
    start, end = doc.span(types.Position(5, 0), types.Position(9, 0), UTF16)
    keystroke = Change("#", types.Range(types.Position(0, 0), types.Position(0, 0)))
    with Anchor(doc, start, end) as anchor:
        for _ in range(5000):
            doc.apply_change(keystroke, UTF16)
        assert anchor.where(SELECTED) == (start, end)
        doc.apply_change(Change("\n", types.Range(types.Position(0, 0), types.Position(0, 0))), UTF16)
        assert anchor.where(SELECTED) == ((6, 0), (10, 0))
    state = {"uri", "language_id", "version", "lines", "followers", "opened", "_snapshot"}  # _snapshot: no log
    assert doc.followers == [] and set(vars(doc)) == state


ALPHABET = ["a", "}", "\n", "\r\n", "\r", "😀", "é", "\x0c", "\u2028", " "]


def test_random_changes_keep_the_editors_lines_and_never_move_an_edit_onto_other_text() -> None:
    """Seeded random documents and changes over CRLF, lone CR, emoji and other separators, sent as
    an editor sends them (UTF-16 positions, several in one batch): the store holds the editor's
    lines, and an edit pending meanwhile either lands on the very text it was asked for (tracked
    by offsets) or is refused."""
    rnd, landed = random.Random(19), 0
    for _ in range(3000):
        text = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 24)))
        doc = Document.from_text("file:///w/r.py", "python", 1, text)
        a, b = sorted(offset(text, position(text, rnd.randint(0, len(text)))) for _ in range(2))
        start, end = doc.span(types.Position(**position(text, a)), types.Position(**position(text, b)), UTF16)
        asked, touched = doc.text_between(start, end), False
        with Anchor(doc, start, end) as anchor:
            for _ in range(rnd.randint(1, 4)):
                p, q = sorted(rnd.randint(0, len(text)) for _ in range(2))
                new = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 4)))
                ps, pe = position(text, p), position(text, q)
                p, q = offset(text, ps), offset(text, pe)  # a position inside a "\r\n" is before it
                rng = types.Range(types.Position(**ps), types.Position(**pe))
                doc.apply_change(Change(new, rng), UTF16)
                text = text[:p] + new + text[q:]
                assert doc.lines == lsp_lines(text)
                touched = touched or (p < b and q > a) or (a < p == q < b)
                if q <= a:
                    a, b = a + len(new) - (q - p), b + len(new) - (q - p)
            span = anchor.where(asked)
        if span is not None:
            assert not touched and doc.text_between(*span) == asked
            assert sum(map(len, doc.lines[: span[0][0]])) + span[0][1] == a, (text, a, b, asked, span, doc.lines)
            landed += 1
    assert landed > 600


# -- code-action commands (actions.py ``[uri, range, instruction, version, opened]``) ----------------

def prompting_client() -> types.ClientCapabilities:
    """An editor that asks for instructions and applies edits (no ``previewEdits``)."""
    caps = client_capabilities_for("visual-studio-code")
    caps.experimental = {"vllmCompanion": {"prompts": True}}
    return caps


def record_apply_edits(client: Any) -> list[Any]:
    applied: list[Any] = []
    client.feature(types.WORKSPACE_APPLY_EDIT)(lambda p: applied.append(p) or types.ApplyWorkspaceEditResult(True))
    return applied


async def offered_arguments(client: Any, uri: str, command: str) -> list[Any]:
    params = {"textDocument": {"uri": uri}, "range": SELECTION, "context": {"diagnostics": []}}
    actions = as_dict(await raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, params))
    return next(list(a["command"]["arguments"]) for a in actions if a["command"]["command"] == command)


def reopen(client: Any, uri: str, text: str) -> None:
    """Close and open again: the editor starts the new opening at version 1 again."""
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=uri)))
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))


async def execute(client: Any, command: str, arguments: list[Any]) -> Any:
    params = types.ExecuteCommandParams(command=command, arguments=arguments)
    return await asyncio.wait_for(client.workspace_execute_command_async(params), 15)


async def test_an_action_offered_before_the_document_was_closed_and_reopened_cannot_edit_the_new_text(
        backend: FakeBackend) -> None:
    """Reopened, a document is at version 1 again: the action offered on version 1 of the old
    text rewrote rows 5-8 of the new one (its version matched), with the editor applying it."""
    backend.default = Reply(chunks=[f"```python\n{REWRITE}```"])
    other = "# another file now\n" * 12
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        applied = record_apply_edits(client)
        uri, _ = open_doc(client, SOURCE)
        arguments = await offered_arguments(client, uri, "vllmCompanion.fix")
        reopen(client, uri, other)
        with pytest.raises(Exception, match="closed since the action was offered"):
            await execute(client, "vllmCompanion.fix", arguments)
    assert applied == [] and backend.generation_requests() == []


async def test_a_chat_action_on_a_document_closed_since_asks_the_model_about_nothing(backend: FakeBackend) -> None:
    """The selection of a closed document is dropped: "Explain what this code does" went to the
    model with no code, and its answer was shown as the explanation of the selection."""
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        uri, _ = open_doc(client, SOURCE)
        arguments = await offered_arguments(client, uri, "vllmCompanion.explain")
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=uri)))
        with pytest.raises(Exception, match="closed since the action was offered"):
            await execute(client, "vllmCompanion.explain", arguments)
    assert backend.generation_requests() == []


@pytest.mark.parametrize("via", ["workspace/executeCommand", "vllmCompanion/edit"])
async def test_an_instruction_of_10_mb_is_refused_before_it_is_redacted_or_sent(backend: FakeBackend, via: str) -> None:
    """Redacting a 10 MB instruction held the event loop 1.2-1.8 s, then it went to the engine."""
    huge = "rename t to total and explain why " * (10_000_000 // 34)
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        uri, _ = open_doc(client, SOURCE)
        with pytest.raises(Exception, match="the instruction is"):
            if via == "vllmCompanion/edit":
                params = {"textDocument": {"uri": uri}, "range": SELECTION, "instruction": huge}
                await asyncio.wait_for(client.protocol.send_request_async(via, params), 15)
            else:
                arguments = await offered_arguments(client, uri, "vllmCompanion.editWithInstruction")
                await execute(client, "vllmCompanion.editWithInstruction", [*arguments[:2], huge, *arguments[3:]])
    assert backend.generation_requests() == []
