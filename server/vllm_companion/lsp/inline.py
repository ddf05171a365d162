"""textDocument/inlineCompletion (LSP 3.18) and the textDocument/completion fallback.

Spec: https://microsoft.github.io/language-server-protocol/specifications/lsp/3.18/specification/#textDocument_inlineCompletion
Handlers are ``async def`` so pygls turns ``$/cancelRequest`` into ``CancelledError``. The
completion cap counts from the request's arrival on the wire (``transport.arrived``).
The completion fallback is advertised only to clients without inline completion (or when
``completion.completionItems`` is ``always``), so VS Code does not show the answer twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..completion.request import CompletionRequest
from ..documents import Document, Position
from ..telemetry import cursor_kind
from .telemetry import accept_command
from .transport import arrived

if TYPE_CHECKING:
    from .server import CompanionServer


def register(server: CompanionServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: CompanionServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        doc = ls.services.documents.get(params.text_document.uri)
        if doc is None:
            return None
        row, col = doc.to_index(params.position, ls.encoding)
        selected = params.context.selected_completion_info
        insert, start = "", col
        if selected is not None:
            s_row, s_col = doc.to_index(selected.range.start, ls.encoding)
            if s_row == row and s_col <= col:
                insert, start = selected.text, s_col
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        request = CompletionRequest(doc.uri, row, col, automatic, insert, start, arrived())
        text = await ls.services.completions.complete(request)
        if not text:
            return None
        begin = _position(doc.to_position(row, start, ls.encoding))
        sid = _issued(ls, doc, row, start, col, insert + text)
        item = types.InlineCompletionItem(
            insert_text=insert + text, range=types.Range(start=begin, end=params.position), command=accept_command(sid)
        )
        return types.InlineCompletionList(items=[item])


def register_completion_fallback(server: CompanionServer, caps: types.ClientCapabilities) -> None:
    mode = server.services.config.completion.completion_items
    has_inline = bool(caps.text_document and caps.text_document.inline_completion)
    if mode == "never" or (mode == "auto" and has_inline):
        return
    options = types.CompletionOptions(trigger_characters=[".", "(", "[", "{", ",", " ", ":", "="])

    server.feature(types.TEXT_DOCUMENT_COMPLETION, options)(completion)


async def completion(ls: CompanionServer, params: types.CompletionParams) -> types.CompletionList:
    empty = types.CompletionList(is_incomplete=True, items=[])
    doc = ls.services.documents.get(params.text_document.uri)
    if doc is None:
        return empty
    row, col = doc.to_index(params.position, ls.encoding)
    line = doc.line(row)
    start = col
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] == "_"):
        start -= 1
    text = await ls.services.completions.complete(CompletionRequest(doc.uri, row, col, True, arrived=arrived()))
    if not text:
        return empty
    begin = _position(doc.to_position(row, start, ls.encoding))
    item = completion_item(line[start:col], text, types.Range(start=begin, end=params.position), _snippets(ls))
    item.command = accept_command(_issued(ls, doc, row, start, col, line[start:col] + text))
    return types.CompletionList(is_incomplete=True, items=[item])


def _issued(ls: CompanionServer, doc: Document, row: int, start: int, cursor: int, text: str) -> str:
    """Tell the acceptance tracker about the suggestion (inserted at ``start``, asked for at
    ``cursor``); its id goes into the item's command."""
    line = doc.line(row)
    model = ls.services.health.served
    kind = cursor_kind(line[:cursor], line[cursor:])
    return ls.services.acceptance.issued(doc.uri, row, start, text, doc.language_id, kind, model.id if model else "?")


def completion_item(word: str, text: str, rng: types.Range, snippets: bool) -> types.CompletionItem:
    """The suggestion as one item that replaces the word being typed (``textEdit``: some clients,
    ALE among them, would insert the label). To a client with snippet support it goes as a
    snippet: Neovim inserts a plain text edit only up to its first space (``x * x`` became
    ``x``), and expands a snippet whole."""
    new_text = word + text
    label = (word + text.split("\n", 1)[0]).strip()[:80] or text.strip()[:80]
    return types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="vLLM Companion",
        filter_text=new_text,
        sort_text="0",
        insert_text_format=types.InsertTextFormat.Snippet if snippets else types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=rng, new_text=_escape_snippet(new_text) if snippets else new_text),
    )


def _snippets(ls: CompanionServer) -> bool:
    caps = ls.client_capabilities.text_document
    item = caps.completion.completion_item if caps and caps.completion else None
    return bool(item and item.snippet_support)


def _escape_snippet(text: str) -> str:
    r"""Snippet syntax (LSP 3.17 "Snippet Syntax"): ``\``, ``$`` and ``}`` are literal only escaped."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")


def _position(pos: Position) -> types.Position:
    return types.Position(line=pos.line, character=pos.character)
