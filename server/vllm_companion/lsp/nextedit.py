"""Next-edit suggestions at the edge, in the Copilot language server's shapes (docs/protocol.md,
"Next-edit suggestions"), so the clients written for it (copilot-lsp and sidekick.nvim in Neovim,
copilot.el's ``copilot-nes-mode``, Xcode's and Eclipse's Copilot plugins) render ours unchanged:

- request ``textDocument/copilotInlineEdit`` ``{textDocument: {uri, version}, position}`` (the
  version is required: an edit is only meaningful for the text it was computed on) → ``{edits:
  [{text, range, textDocument: {uri, version}, command: {title, command, arguments: [id]}}]}``;
  several edits are alternatives; ``{edits: []}`` when there is nothing or the document moved on.
  Params that do not fit are InvalidParams (-32602); the handler is ``async`` so
  ``$/cancelRequest`` cancels it (and the model call under it);
- notification ``textDocument/didShowInlineEdit`` ``{item: {command: {arguments: [id]}}}``;
- notification ``textDocument/didFocus`` ``{textDocument: {uri}}`` (Copilot's clients send it on
  every buffer switch): the document's prompt head is warmed, as on ``didOpen`` (completion/warm.py);
- commands ``vllmCompanion.acceptInlineEdit`` ``[id]`` (each edit's ``command``, run by the
  client through ``workspace/executeCommand`` after applying the edit) and
  ``vllmCompanion.dismissInlineEdit`` ``[id]``.
Positions: the service works in code points; ranges go out in the negotiated encoding (UTF-16
by default), and ``text`` carries the document's own line endings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pydantic import Field, StrictInt
from pygls.lsp.server import LanguageServer

from ..documents import Position
from ..nextedit.service import Offer
from .chat import _Params, parse
from .telemetry import _field, _item_id

if TYPE_CHECKING:
    from .server import CompanionServer

INLINE_EDIT = "textDocument/copilotInlineEdit"
SHOWN, FOCUS = "textDocument/didShowInlineEdit", "textDocument/didFocus"
ACCEPT, DISMISS = "vllmCompanion.acceptInlineEdit", "vllmCompanion.dismissInlineEdit"
MAX_URI = 8192


class _Document(_Params):
    uri: str = Field(min_length=1, max_length=MAX_URI)
    version: StrictInt


class _Position(_Params):
    line: StrictInt = Field(ge=0, lt=1 << 31)
    character: StrictInt = Field(ge=0, lt=1 << 31)


class InlineEditParams(_Params):
    text_document: _Document
    position: _Position


def capability() -> dict[str, Any]:
    """What ``initialize`` advertises under ``capabilities.experimental.vllmCompanion.nextEdit``."""
    return {"method": INLINE_EDIT, "accept": ACCEPT, "dismiss": DISMISS}


def register(server: CompanionServer) -> None:
    @server.feature(INLINE_EDIT)
    async def inline_edit(ls: CompanionServer, params: Any) -> dict[str, Any]:
        p = parse(InlineEditParams, params)
        uri, version = p.text_document.uri, p.text_document.version
        doc = ls.services.documents.get(uri)
        if doc is None:
            return {"edits": []}
        row, col = doc.to_index(Position(p.position.line, p.position.character), ls.encoding)
        offers = await ls.services.nextedit.suggest(uri, version, row, col, _arrived())
        return {"edits": [e for o in offers if (e := _wire(ls, o)) is not None]}

    @server.feature(SHOWN)
    def shown(ls: CompanionServer, params: Any) -> None:
        if (sid := _item_id(params)) is not None:
            ls.services.nextedit.shown(sid)

    @server.feature(FOCUS)
    def focused(ls: CompanionServer, params: Any) -> None:
        if (uri := _focused_uri(params)) is not None:
            ls.services.completions.warmer.opened(uri)  # the prompt head, prefilled (completion/warm.py)

    @server.command(ACCEPT)
    def accepted(server_: LanguageServer, *args: Any) -> None:
        if args and isinstance(args[0], str):
            cast("CompanionServer", server_).services.nextedit.accepted(args[0])

    @server.command(DISMISS)
    def dismissed(server_: LanguageServer, *args: Any) -> None:
        if args and isinstance(args[0], str):
            cast("CompanionServer", server_).services.nextedit.dismissed(args[0])


def _focused_uri(params: Any) -> str | None:
    """``didFocus``'s ``{textDocument: {uri}}``, or None for anything else (a notification gets no
    error answer)."""
    uri = _field(_field(params, "textDocument"), "uri")
    return uri if isinstance(uri, str) and 0 < len(uri) <= MAX_URI else None


def _wire(ls: CompanionServer, offer: Offer) -> dict[str, Any] | None:
    """An offer in Copilot's shape: the range in the client's encoding, versioned."""
    doc = ls.services.documents.get(offer.uri)
    if doc is None or doc.version != offer.version:
        return None
    s = offer.suggestion
    start = doc.to_position(s.start_row, s.start_col, ls.encoding)
    end = doc.to_position(s.end_row, s.end_col, ls.encoding)
    return {
        "text": s.text,
        "range": {"start": {"line": start.line, "character": start.character},
                  "end": {"line": end.line, "character": end.character}},
        "textDocument": {"uri": offer.uri, "version": offer.version},
        "command": {"title": "vLLM Companion: accept next edit", "command": ACCEPT, "arguments": [offer.id]},
    }


def _arrived() -> float:
    """When the request's first byte was read (lsp/transport.py), imported here at call time:
    transport imports protocol, which imports this module for the capability it advertises."""
    from .transport import arrived

    return arrived()
