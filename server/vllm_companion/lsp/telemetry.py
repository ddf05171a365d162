"""Acceptance telemetry at the edge: the accept command and Copilot's notification names.

- ``vllmCompanion.didAcceptCompletion`` ``[id]``: each inline item's ``command``; the editor runs it
  through ``workspace/executeCommand`` when the user accepts the item (LSP 3.18
  InlineCompletionItem.command: "executed after inserting this completion").
- ``textDocument/didShowCompletion`` ``{item}`` and ``textDocument/didPartiallyAcceptCompletion``
  ``{item, acceptedLength}``: the Copilot language server's names and shapes
  (https://www.npmjs.com/package/@github/copilot-language-server), so clients written for it work.
VS Code's stable API sends no partial accept: ``typed`` shows the tracker each single-line edit
before it is applied, and an edit that inserts a word or line of the suggestion is one (the same
``partial`` event; telemetry/tracker.py ``partial_length``).
Malformed params are ignored (notifications have no answer); events stay on this machine. Only
the few fields named above are read, one level at a time (``_field``): params nested hundreds deep
raised RecursionError when they were turned back into plain data whole (issue 19).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..telemetry.tracker import NEXT_EDIT

if TYPE_CHECKING:
    from .server import CompanionServer

ACCEPT = "vllmCompanion.didAcceptCompletion"
SHOWN, PARTIAL = "textDocument/didShowCompletion", "textDocument/didPartiallyAcceptCompletion"


def accept_command(sid: str) -> types.Command:
    return types.Command(title="vLLM Companion: suggestion accepted", command=ACCEPT, arguments=[sid])


def register(server: CompanionServer) -> None:
    @server.command(ACCEPT)
    def accepted(server_: LanguageServer, *args: Any) -> None:
        ls = cast("CompanionServer", server_)
        if args and isinstance(args[0], str) and _completion(ls, args[0]):
            ls.services.acceptance.accepted(args[0])

    @server.feature(SHOWN)
    def shown(ls: CompanionServer, params: Any) -> None:
        if (sid := _item_id(params)) is not None and _completion(ls, sid):
            ls.services.acceptance.shown(sid)

    @server.feature(PARTIAL)
    def partial(ls: CompanionServer, params: Any) -> None:
        length = _field(params, "acceptedLength")
        if (sid := _item_id(params)) is not None and isinstance(length, int) and not isinstance(length, bool) \
                and _completion(ls, sid):
            ls.services.acceptance.partially_accepted(sid, length)


def _completion(ls: CompanionServer, sid: str) -> bool:
    """Is ``sid`` an inline completion's? A next edit's id (lsp/nextedit.py) is reported only
    through the next-edit notifications and commands, never as a completion's."""
    item = ls.services.acceptance.get(sid)
    return item is None or item.kind != NEXT_EDIT


def _field(data: Any, name: str) -> Any:
    """``data[name]`` when ``data`` is an object (custom params come as parsed: lsp/protocol.py),
    else None."""
    return data.get(name) if isinstance(data, dict) else None


def _item_id(params: Any) -> str | None:
    """The suggestion id in ``{item: {command: {arguments: [id]}}}``."""
    args = _field(_field(_field(params, "item"), "command"), "arguments")
    return args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None


def typed(ls: CompanionServer, params: types.DidChangeTextDocumentParams) -> None:
    """A didChange, before the document takes it: one single-line edit may be a partial accept."""
    doc = ls.services.documents.get(params.text_document.uri)
    if doc is None or len(params.content_changes) != 1:
        return
    change = params.content_changes[0]
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return  # the whole text: no single insertion to read
    if change.range.start.line != change.range.end.line:
        return
    row, col = doc.to_index(change.range.start, ls.encoding)
    ls.services.acceptance.typed(doc.uri, row, col, change.text)
