"""Acceptance telemetry at the edge: the accept command and Copilot's notification names.

- ``vllmCompanion.didAcceptCompletion`` ``[id]``: each inline item's ``command``; the editor runs it
  through ``workspace/executeCommand`` when the user accepts the item (LSP 3.18
  InlineCompletionItem.command: "executed after inserting this completion").
- ``textDocument/didShowCompletion`` ``{item}`` and ``textDocument/didPartiallyAcceptCompletion``
  ``{item, acceptedLength}``: the Copilot language server's names and shapes
  (https://www.npmjs.com/package/@github/copilot-language-server), so clients written for it work.
Malformed params are ignored (notifications have no answer); events stay on this machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .chat import plain

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
        values = plain(list(args))
        if values and isinstance(values[0], str):
            ls.services.acceptance.accepted(values[0])

    @server.feature(SHOWN)
    def shown(ls: CompanionServer, params: Any) -> None:
        if (sid := _item_id(plain(params))) is not None:
            ls.services.acceptance.shown(sid)

    @server.feature(PARTIAL)
    def partial(ls: CompanionServer, params: Any) -> None:
        data = plain(params)
        length = data.get("acceptedLength") if isinstance(data, dict) else None
        if (sid := _item_id(data)) is not None and isinstance(length, int) and not isinstance(length, bool):
            ls.services.acceptance.partially_accepted(sid, length)


def _item_id(data: Any) -> str | None:
    """The suggestion id in ``{item: {command: {arguments: [id]}}}``."""
    item = data.get("item") if isinstance(data, dict) else None
    command = item.get("command") if isinstance(item, dict) else None
    args = command.get("arguments") if isinstance(command, dict) else None
    return args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None
