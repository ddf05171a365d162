"""Attacks on next-edit suggestions (nextedit/, lsp/nextedit.py): didChange storms, a 10 MB line,
regex-hostile tokens, spoofed versions, request floods, forged accept ids, secrets in the history,
one didChange of thousands of changes, files full of the renamed token's letters, 100,000 open
documents, a model answer that moves or invents a redacted secret, another project's files, a
completion's id sent to the next-edit commands, a workspace's odd family name. The real service
objects, with a predictor that stalls where a slow model would, and the real server over stdio."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend
from tests.lsp_session import as_dict, inline_params, open_doc, options, session
from vllm_companion.config import Config
from vllm_companion.documents import Change, DocumentStore, Position
from vllm_companion.nextedit import diffing
from vllm_companion.nextedit import history as h
from vllm_companion.nextedit.history import EditHistory
from vllm_companion.nextedit.propagation import Lines, Rename, propagate, rename_of
from vllm_companion.nextedit.service import NextEditService
from vllm_companion.nextedit.types import NextEditInput, RecordedEdit
from vllm_companion.privacy import Privacy, redact
from vllm_companion.telemetry.store import EventStore
from vllm_companion.telemetry.tracker import Acceptance

URI = "file:///w/a.py"
SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


class R:
    def __init__(self, line: int, col: int, line2: int | None = None, col2: int | None = None) -> None:
        self.start = Position(line, col)
        self.end = Position(line if line2 is None else line2, col if col2 is None else col2)


class Stalling:
    """A predictor as slow as a stuck engine; counts the calls it saw cancelled."""

    def __init__(self) -> None:
        self.calls = self.cancelled = 0

    async def predict(self, inp: NextEditInput) -> str | None:
        self.calls += 1
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return None


class Answering:
    """A predictor that answers each region with ``rewrite(region text)`` and keeps what it was sent."""

    def __init__(self, rewrite: Any) -> None:
        self.rewrite, self.seen = rewrite, []  # type: list[NextEditInput]

    async def predict(self, inp: NextEditInput) -> str | None:
        self.seen.append(inp)
        return str(self.rewrite(inp.region.text))


def service(tmp_path: Path, predictor: Any = None, timeout_ms: int = 3000, **next_edit: Any) -> NextEditService:
    docs, privacy = DocumentStore(), Privacy(roots=["file:///w"])
    config = Config.model_validate({"nextEdit": {"timeoutMs": timeout_ms, **next_edit}})
    acceptance = Acceptance(EventStore(tmp_path / "t.sqlite3"), docs, (30.0, 120.0), True,
                            on_accept=lambda s: None, notice=lambda t: None)
    return NextEditService(config, docs, privacy, EditHistory(docs, privacy), acceptance, predictor)


def change(svc: NextEditService, uri: str, version: int, rng: R | None, text: str) -> None:
    c = Change(text, rng)
    svc.changing(uri, [c])
    svc.documents.change(uri, version, [c], "utf-16")


def test_a_didchange_storm_keeps_memory_bounded(tmp_path: Path) -> None:
    svc = service(tmp_path)
    svc.documents.open(URI, "python", 1, "".join(f"line {i}\n" for i in range(5000)))
    tracemalloc.start()
    start = time.perf_counter()
    for i in range(10_000):  # keystrokes all over the file, a new far edit every time
        change(svc, URI, i + 2, R((i * 37) % 5000, 0), "x" * 50)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept, open_ = svc.history.size()
    assert kept <= h.MAX_EDITS and open_ <= h.MAX_OPEN
    assert peak < 20_000_000, peak  # the document itself grows by 0.5 MB; the history adds little
    assert elapsed < 20, elapsed


def test_a_10_mb_line_is_recorded_in_a_few_hundred_characters(tmp_path: Path) -> None:
    svc = service(tmp_path, Stalling())
    svc.documents.open(URI, "python", 1, "count = 1; " + "y" * 10_000_000 + "\n")
    change(svc, URI, 2, R(0, 0, 0, 5), "total")
    start = time.perf_counter()
    assert asyncio.run(svc.suggest(URI, 2, 0, 5)) == []  # the long line is skipped; no model call on it
    assert time.perf_counter() - start < 2
    edits = svc.history.recent(10, 100_000)
    assert edits and all(len(e.before) + len(e.after) < 2 * (diffing.MAX_LINE_CHARS + 10) for e in edits)
    assert svc.predictor is not None and svc.predictor.calls == 0  # type: ignore[attr-defined]


def test_regex_hostile_tokens_are_data() -> None:
    for before, after in (("x = a.*b", "x = a.*c"), ("(?P<x>", "(?P<y>"), ("[a-", "[b-")):
        rename = rename_of(RecordedEdit(URI, "a.py", 0, before, after))
        assert rename is None or rename.old.isalnum()
    hostile = Lines(URI, ["b = 1", "(" * 5000 + "a" * 5000 + ")*" * 100, "a" * 4000 + "!", "aaa"])
    start = time.perf_counter()
    (t,) = propagate(Rename("aaa", "b", URI, 0, 0), hostile, 0, 0, [])
    assert (t.suggestion.start_row, time.perf_counter() - start < 0.5) == (3, True)


def test_a_spoofed_version_gets_nothing(tmp_path: Path) -> None:
    svc = service(tmp_path)
    svc.documents.open(URI, "python", 1, "def f(count):\n    return count\n")
    change(svc, URI, 7, R(0, 6, 0, 11), "total")
    for version in (6, 8, 1 << 40, -1):
        assert asyncio.run(svc.suggest(URI, version, 0, 11)) == []
    assert len(asyncio.run(svc.suggest(URI, 7, 0, 11))) == 1
    assert asyncio.run(svc.suggest("file:///w/not-open.py", 7, 0, 0)) == []


def test_a_flood_of_requests_supersede_each_other_in_bounded_time(tmp_path: Path) -> None:
    predictor = Stalling()
    svc = service(tmp_path, predictor, timeout_ms=1500)
    svc.documents.open(URI, "python", 1, "x = 1\n" * 30)

    async def flood() -> list[tuple[int, float]]:
        async def one(i: int) -> tuple[int, float]:
            t0 = time.perf_counter()
            return len(await svc.suggest(URI, 1, i % 30, 0)), time.perf_counter() - t0

        tasks = []
        for i in range(200):
            tasks.append(asyncio.ensure_future(one(i)))
            await asyncio.sleep(0)
        return await asyncio.gather(*tasks)

    start = time.perf_counter()
    answers = asyncio.run(flood())
    assert all(n == 0 for n, _ in answers)
    assert max(t for _, t in answers[:-1]) < 1.0  # superseded: answered at once, not at the cap
    assert time.perf_counter() - start < 5  # the last one at its cap (1.5 s)
    assert predictor.cancelled == predictor.calls == 200  # no model call outlives its request


def test_accepting_an_unknown_or_forged_id_does_nothing(tmp_path: Path) -> None:
    svc = service(tmp_path)
    svc.documents.open(URI, "python", 1, "x = 1\n")
    for sid in ("s999999", "", "s1' OR 1=1 --", "x" * 100_000):
        svc.accepted(sid)
        svc.dismissed(sid)
        svc.shown(sid)
    assert svc.acceptance.store.events() == []
    assert svc.history.size() == (0, 0)


def test_the_history_never_holds_secret_files_or_inline_secrets(tmp_path: Path) -> None:
    svc = service(tmp_path)
    for uri in ("file:///w/.env", "file:///w/id_rsa", "file:///w/.ssh/config", URI):
        svc.documents.open(uri, "plaintext", 1, "token = ''\n")
        change(svc, uri, 2, R(0, 9), SECRET)
        change(svc, uri, 3, R(0, 0), "# see\n")
    edits = svc.history.recent(64, 100_000)
    assert edits and {e.uri for e in edits} == {URI}
    assert all(SECRET not in e.before + e.after for e in edits)
    svc.privacy.update(extra_globs=["*.py"])  # the user's globs grow: what was kept is not read either
    assert svc.history.recent(64, 100_000) == ()


def notify_raw(client: Any, method: str, params: Any) -> None:
    """A notification written as raw JSON on the server's stdin (no client-side model in the way)."""
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode()
    client._server.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


async def ask(client: Any, uri: str, version: int, line: int, character: int, timeout: float = 10) -> list[Any]:
    params = {"textDocument": {"uri": uri, "version": version}, "position": {"line": line, "character": character}}
    result = await asyncio.wait_for(client.protocol.send_request_async("textDocument/copilotInlineEdit", params),
                                    timeout)
    return as_dict(result)["edits"]  # type: ignore[no-any-return]


async def test_one_didchange_of_thousands_of_whole_text_changes_is_one_edit(backend: FakeBackend) -> None:
    """Before: the history took each change against the text before all of them, a window of the
    whole document each: 3,000 changes of "x" on 20,000 lines held the server about 30 s."""
    async with session(options(backend.url), workspace="file:///work") as client:
        uri, _ = open_doc(client, "x = 1\n" * 20_000)
        changes = [{"text": "x"} for _ in range(3000)]
        start = time.perf_counter()
        notify_raw(client, "textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                      "contentChanges": changes})
        assert await ask(client, uri, 2, 0, 0) == []
        assert time.perf_counter() - start < 3


def test_changes_of_one_notification_are_read_in_their_own_rows(tmp_path: Path) -> None:
    """Several changes in one didChange (multi-cursor, a formatter): each is in the rows the previous
    one left. Before: the second was read against the text before the first (three rows off), the
    first was lost and the edit recorded lines that never changed."""
    svc = service(tmp_path)
    text = "".join("    return count\n" if i == 12 else f"v{i} = {i}\n" for i in range(30))
    svc.documents.open(URI, "python", 1, text)
    batch = [Change("# a\n" * 3, R(0, 0)), Change("total", R(15, 11, 15, 16))]
    svc.changing(URI, batch)
    svc.documents.change(URI, 2, batch, "utf-16")
    (edit,) = svc.history.recent(10, 100_000)
    assert "count" in edit.before and edit.after == "# a\n" * 3 + edit.before.replace("count", "total")
    far = [Change("y", R(1 << 30, 0, (1 << 30) + 5, 0)) for _ in range(2000)]  # past the end, thousands
    start = time.perf_counter()
    svc.changing(URI, far)
    assert time.perf_counter() - start < 0.5


def test_files_full_of_the_tokens_letters_do_not_hold_the_loop() -> None:
    """``aaa`` renamed, and 5 documents of 5,000 lines of 4,999 ``a`` with no whole-word ``aaa``:
    the whole-word pattern costs about 65 ns a character there. Before: 6.5 s on the event loop."""
    line = "a" * 4999
    docs = [Lines(f"file:///w/{i}.py", [line] * 5000) for i in range(5)]
    start = time.perf_counter()
    assert propagate(Rename("aaa", "b", URI, 0, 0), Lines(URI, ["b = 1", *([line] * 5000)]), 0, 1, docs[1:]) == []
    assert time.perf_counter() - start < 0.5


def test_a_hundred_thousand_open_documents_do_not_slow_a_request(tmp_path: Path) -> None:
    """Before: every open document's path was resolved on each request (6.6 s for 100,000)."""
    svc = service(tmp_path)
    svc.documents.open(URI, "python", 1, "def count():\n    return 1\n")
    for i in range(30_000):
        svc.documents.open(f"file:///w/d{i}.py", "python", 1, "x = 1\n")
    change(svc, URI, 2, R(0, 4, 0, 9), "total")
    start = time.perf_counter()
    assert asyncio.run(svc.suggest(URI, 2, 0, 9)) == []
    assert time.perf_counter() - start < 0.3


def test_propagation_offers_no_edit_into_another_projects_file_or_a_scratch_buffer(tmp_path: Path) -> None:
    """Open documents outside the workspace are never context (docs/security.md): before, the
    rename was offered in another project's file and in an ``untitled:`` buffer."""
    svc = service(tmp_path)
    svc.documents.open(URI, "python", 1, "def count():\n    return 1\n")
    for other in ("file:///elsewhere/client/x.py", "untitled:Untitled-1", "vscode-remote://h/w/x.py"):
        svc.documents.open(other, "python", 1, "print(count)\n")
    change(svc, URI, 2, R(0, 4, 0, 9), "total")
    assert asyncio.run(svc.suggest(URI, 2, 0, 9)) == []
    svc.documents.open("file:///w/b.py", "python", 1, "print(count)\n")  # the workspace's: offered
    (offer,) = asyncio.run(svc.suggest(URI, 2, 0, 9))
    assert offer.uri == "file:///w/b.py"


def test_the_model_never_sees_edits_of_files_outside_the_workspace(tmp_path: Path) -> None:
    predictor = Answering(lambda text: text)
    svc = service(tmp_path, predictor, propagation=False)
    for uri in ("file:///elsewhere/client/notes.py", "untitled:Untitled-1", URI):
        svc.documents.open(uri, "python", 1, "a = 1\n")
        change(svc, uri, 2, R(0, 4, 0, 5), "2")
    asyncio.run(svc.suggest(URI, 2, 0, 0))
    (sent,) = predictor.seen
    assert [e.uri for e in sent.history] == [URI]


PLACEHOLDER = redact(f'k = "{SECRET}"').text.split('"')[1]  # <redacted:github-token:1>


def secret_region_service(tmp_path: Path, rewrite: Any, text: str) -> NextEditService:
    svc = service(tmp_path, Answering(rewrite), propagation=False)
    svc.documents.open(URI, "python", 1, text)
    return svc


def test_a_model_answer_cannot_copy_a_secret_to_a_new_place(tmp_path: Path) -> None:
    """The model sees ``<redacted:github-token:1>``; an answer that writes it elsewhere had it
    restored there: before, the edit offered wrote the user's token into a print call."""
    text = f'TOKEN = "{SECRET}"\nx = 1\n'
    svc = secret_region_service(tmp_path, lambda t: t.replace("x = 1", f'x = 1\nprint("{PLACEHOLDER}")'), text)
    offers = asyncio.run(svc.suggest(URI, 1, 1, 0))
    assert all(SECRET not in o.suggestion.text for o in offers) and offers == []


def test_a_model_answer_cannot_write_a_placeholder_or_change_a_secret(tmp_path: Path) -> None:
    text = f'TOKEN = "{SECRET}"\nx = 1\n'
    for rewrite in (lambda t: t.replace("x = 1", "x = '<redacted:aws-access-key:7>'"),  # invented
                    lambda t: t.replace(PLACEHOLDER, PLACEHOLDER[:-1] + "2>"),  # another number: left as text
                    lambda t: t.replace(PLACEHOLDER, "ghp_attacker")):  # the secret changed
        svc = secret_region_service(tmp_path, rewrite, text)
        assert asyncio.run(svc.suggest(URI, 1, 1, 0)) == []
    svc = secret_region_service(tmp_path, lambda t: t.replace("x = 1", "x = 2"), text)  # an edit beside it: offered
    (offer,) = asyncio.run(svc.suggest(URI, 1, 1, 0))
    assert (offer.suggestion.start_row, offer.suggestion.text) == (1, "2")


def test_user_text_that_looks_like_a_placeholder_never_becomes_the_secret(tmp_path: Path) -> None:
    """The user's own ``<redacted:github-token:1>`` (in a comment) and a real token numbered 1:
    the model echoes both placeholders unchanged, and restoring turned the comment into the token.
    Before: an edit that wrote the token into the comment."""
    text = f"# docs: secrets show as {PLACEHOLDER}\nTOKEN = \"{SECRET}\"\nx = 1\n"
    svc = secret_region_service(tmp_path, lambda t: t.replace("x = 1", "x = 2"), text)
    offers = asyncio.run(svc.suggest(URI, 1, 2, 0))
    assert all(SECRET not in o.suggestion.text for o in offers)
    assert [(o.suggestion.start_row, o.suggestion.text) for o in offers] == [(2, "2")]


def test_a_workspace_family_name_is_never_a_label_in_the_store(tmp_path: Path) -> None:
    """``nextEdit.family`` is a repository's to tune; before, whatever it said (terminal escapes
    included) became the model label of every next edit, printed raw by ``vllm-companion stats``."""
    odd = "\x1b]0;pwned\x07\x1b[2J"
    svc = service(tmp_path, Answering(lambda t: t.replace("x = 1", "x = 2")), propagation=False, family=odd)
    svc.documents.open(URI, "python", 1, "x = 1\n")
    (offer,) = asyncio.run(svc.suggest(URI, 1, 0, 0))
    item = svc.acceptance.get(offer.id)
    assert item is not None and item.model == "model"


async def test_a_completions_id_sent_to_the_next_edit_commands_records_nothing(backend: FakeBackend,
                                                                               tmp_path: Path) -> None:
    """Before: ``acceptInlineEdit`` with an inline completion's id recorded that completion as
    shown and accepted (and prefetched after it) though the user never took it."""
    state = tmp_path / "state"
    init = options(backend.url, prefetch=False)
    async with session(init, env={"VLLM_COMPANION_STATE": str(state)}, workspace="file:///work") as client:
        uri, pos = open_doc(client, "def add(a, b):\n    return ")
        result = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(uri, pos)), 10)
        assert isinstance(result, types.InlineCompletionList) and result.items and result.items[0].command
        sid = result.items[0].command.arguments[0]
        notify_raw(client, "textDocument/didShowInlineEdit", {"item": {"command": {"arguments": [sid]}}})
        for command in ("vllmCompanion.acceptInlineEdit", "vllmCompanion.dismissInlineEdit"):
            await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command, arguments=[sid]))
    assert EventStore(state / "telemetry.sqlite3").events() == []


async def test_a_next_edits_id_sent_to_the_completion_notifications_records_nothing(backend: FakeBackend,
                                                                                    tmp_path: Path) -> None:
    """The reverse of the case above. Before: ``didShowCompletion``, ``didPartiallyAcceptCompletion``
    and the completion's accept command with a next edit's id recorded it as shown and accepted
    (and as a completion's partial accept), though the user never saw or took it."""
    state = tmp_path / "state"
    env = {"VLLM_COMPANION_STATE": str(state)}
    async with session(options(backend.url), env=env, workspace="file:///work") as client:
        uri, _ = open_doc(client, "def f(count):\n    return count\n")
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(0, 6), end=types.Position(0, 11)), text="total")]))
        edits = await ask(client, uri, 2, 0, 11)
        assert edits and edits[0]["text"] == "total"
        sid = edits[0]["command"]["arguments"][0]
        notify_raw(client, "textDocument/didShowCompletion", {"item": {"command": {"arguments": [sid]}}})
        notify_raw(client, "textDocument/didPartiallyAcceptCompletion",
                   {"item": {"command": {"arguments": [sid]}}, "acceptedLength": 2})
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="vllmCompanion.didAcceptCompletion", arguments=[sid]))
    assert EventStore(state / "telemetry.sqlite3").events() == []


def test_a_bug_below_the_predictor_or_in_propagation_is_no_edit_not_an_error_answer(tmp_path: Path,
                                                                                    monkeypatch: Any) -> None:
    """Review finding: only ``predictor.predict`` was guarded; an exception in the diff
    (``edits.suggestions``) or in propagation reached the client as an internal error, where the
    protocol promises ``{edits: []}``."""
    from vllm_companion.nextedit import service as service_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    svc = service(tmp_path, Answering(lambda t: t.replace("x = 1", "x = 2")))
    svc.documents.open(URI, "python", 1, "x = 1\ny = 2\n")
    monkeypatch.setattr(service_module.edits, "suggestions", broken)
    monkeypatch.setattr(service_module, "propagate", broken)
    monkeypatch.setattr(service_module, "rename_of", lambda edit: object())
    assert asyncio.run(svc.suggest(URI, 1, 0, 0)) == []
