"""``vllmCompanion/chat`` and ``vllmCompanion/edit`` at the edge: parse, call the chat service,
convert. Protocol (types and examples in docs/protocol.md): chat deltas stream as ``$/progress``
on the request's ``partialResultToken`` with value ``{"delta": text}``; the result is the whole
answer with metadata. Backend failures before any text are JSON-RPC errors (-32803).

An edit whose answer was cut by the token cap (finish reason "length": ``chat.maxTokens``, or a
team server's ``engine.teamMaxTokens`` clamp) is RequestFailed, never an edit: the rewrite replaces
the whole selection, and half of it would delete the rest of the code. Its partial text reached
the client only as the streamed deltas (tests/e2e/test_edit_cut.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from lsprotocol import types
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from pydantic.alias_generators import to_camel
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from ..backend import BackendError
from ..chat.requests import ChatRequest, ChatResult, EditConflict, EditRefused, EditRequest, Index, Selection
from ..documents import Document

if TYPE_CHECKING:
    from .server import CompanionServer

CHAT, EDIT = "vllmCompanion/chat", "vllmCompanion/edit"
# A chat's messages and attached files, at most: beyond, InvalidParams before anything is read.
# The history is trimmed to the model's budget anyway (chat/context.py) and the service reads 32
# files (chat/service.py MAX_FILES); 10,000 messages held the event loop 1.7 s when pygls still
# rebuilt them (lsp/protocol.py, module doc 4), and every one is still validated and copied here.
MAX_MESSAGES = MAX_ATTACHED = 256


class _Params(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Message(_Params):
    role: Literal["system", "user", "assistant"]
    content: str


class PositionParams(_Params):
    line: int = Field(ge=0, lt=1 << 31)  # LSP's uinteger; 2**64 or -1 is InvalidParams, not an internal error
    character: int = Field(ge=0, lt=1 << 31)


class RangeParams(_Params):
    """A wire range, typed: a ``dict[str, Any]`` field copied every key pydantic was given (a
    textDocument of 2 M keys held the event loop 0.6 s); a model with ``extra="ignore"`` looks up
    its own fields only (tests/adversarial/test_protocol.py)."""

    start: PositionParams
    end: PositionParams


class DocumentParams(_Params):
    uri: str
    version: StrictInt | None = None  # None: not checked against the open document (chat/service.py)


class SelectionParams(_Params):
    uri: str
    range: RangeParams


class ChatContext(_Params):
    selection: SelectionParams | None = None
    current_file: str | None = None  # a URI
    files: list[str] = Field(default_factory=list, max_length=MAX_ATTACHED)  # more URIs the user attached


class ChatParams(_Params):
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    context: ChatContext | None = None
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    partial_result_token: int | str | None = None
    work_done_token: int | str | None = None


class EditParams(_Params):
    text_document: DocumentParams
    range: RangeParams
    instruction: str = Field(min_length=1)
    apply: bool = False
    partial_result_token: int | str | None = None


_ParamsT = TypeVar("_ParamsT", bound=_Params)


class RequestFailed(JsonRpcException):
    CODE = -32803  # LSP RequestFailed
    MESSAGE = "Request failed"


def plain(obj: Any) -> Any:
    """JSON-like data: dicts as they are (protocol.py hands custom params over as parsed), lists
    copied, and a namedtuple (pygls's form for custom results on a client: tests/lsp_session.py
    ``as_dict``) back to a dict."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


def parse(model: type[_ParamsT], params: Any) -> _ParamsT:
    """``params`` as ``model``, or InvalidParams. Only an object is read: a top-level array was
    copied item by item on the event loop before pydantic refused it (3 M empty lists: a no-op
    waited 4.5 s, tests/adversarial/test_protocol.py); an object is handed over as parsed."""
    if not isinstance(params, dict):
        raise JsonRpcInvalidParams("invalid params: params must be an object")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise JsonRpcInvalidParams(f"invalid params: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc


def register(server: CompanionServer) -> None:
    @server.feature(CHAT)
    async def chat(ls: CompanionServer, params: Any) -> dict[str, Any]:
        return await run_chat(ls, parse(ChatParams, params))

    @server.feature(EDIT)
    async def edit(ls: CompanionServer, params: Any) -> dict[str, Any]:
        return await run_edit(ls, parse(EditParams, params))


async def run_chat(ls: CompanionServer, p: ChatParams) -> dict[str, Any]:
    context = p.context or ChatContext()
    request = ChatRequest(
        messages=[m.model_dump() for m in p.messages],
        selection=selection(ls, context.selection.uri, context.selection.range) if context.selection else None,
        files=[u for u in [context.current_file, *context.files] if u],
        model=p.model,
        max_tokens=p.max_tokens,
    )
    if p.work_done_token is not None:
        begin = types.WorkDoneProgressBegin(title="vLLM Companion", cancellable=True)
        ls.work_done_progress.begin(p.work_done_token, begin)
    try:
        result = await _answer(lambda on_delta: ls.services.chat.chat(request, on_delta), ls, p.partial_result_token)
    finally:
        if p.work_done_token is not None:
            ls.work_done_progress.end(p.work_done_token, types.WorkDoneProgressEnd())
    answer: dict[str, Any] = result.to_json()
    return answer


async def run_edit(ls: CompanionServer, p: EditParams) -> dict[str, Any]:
    uri, version = p.text_document.uri, p.text_document.version
    request = EditRequest(selection(ls, uri, p.range), p.instruction, version)
    try:
        done = await ls.services.chat.edit(request, _deltas(ls, p.partial_result_token))
    except EditConflict as exc:  # valid when asked; the document moved under it (RequestFailed)
        raise RequestFailed(str(exc)) from exc
    except EditRefused as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc
    except BackendError as exc:
        raise RequestFailed(str(exc)) from exc
    result = _whole(_checked(done.answer))
    doc = ls.services.documents.get(uri)
    rng = to_range(p.range) if doc is None else types.Range(
        start=wire_position(doc, done.start, ls.encoding), end=wire_position(doc, done.end, ls.encoding))
    # Versioned with the version the range was computed for (the current one, after a rebase):
    # the editor refuses the edit if the document changes again before it applies it.
    target = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=done.version)
    change = types.TextDocumentEdit(text_document=target, edits=[types.TextEdit(range=rng, new_text=done.new_text)])
    workspace_edit = types.WorkspaceEdit(document_changes=[change])
    applied = False
    if p.apply and result.finish_reason == "stop":
        reply = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=workspace_edit, label="vLLM Companion: edit")
        )
        applied = bool(reply and reply.applied)
    return {"edit": workspace_edit, "applied": applied, **result.to_json()}


def wire_position(doc: Document, index: Index, encoding: str) -> types.Position:
    """A (row, code-point column) index as a client position; a column past the line's text
    (the range took the line break too) is the start of the next line."""
    row, col = index
    if col > len(doc.line(row)):
        return types.Position(line=row + 1, character=0)
    pos = doc.to_position(row, col, encoding)
    return types.Position(line=pos.line, character=pos.character)


def selection(ls: CompanionServer, uri: str, raw: RangeParams) -> Selection:
    """A wire range in a document as plain indices (an unknown document keeps the raw rows)."""
    rng = to_range(raw)
    doc = ls.services.documents.get(uri)
    if doc is None:
        return Selection(uri, (rng.start.line, rng.start.character), (rng.end.line, rng.end.character))
    start, end = doc.span(rng.start, rng.end, ls.encoding)
    return Selection(uri, start, end)


def to_range(raw: RangeParams) -> types.Range:
    """The validated wire range as lsprotocol's (its bounds checked by ``PositionParams``)."""
    return types.Range(
        start=types.Position(line=raw.start.line, character=raw.start.character),
        end=types.Position(line=raw.end.line, character=raw.end.character),
    )


def _deltas(ls: CompanionServer, token: int | str | None) -> Callable[[str], None]:
    def on_delta(text: str) -> None:
        if token is not None:
            ls.protocol.notify(types.PROGRESS, types.ProgressParams(token=token, value={"delta": text}))

    return on_delta


async def _answer(
    ask: Callable[[Callable[[str], None]], Awaitable[ChatResult]], ls: CompanionServer, token: int | str | None
) -> ChatResult:
    try:
        result = await ask(_deltas(ls, token))
    except BackendError as exc:
        raise RequestFailed(str(exc)) from exc
    return _checked(result)


def _whole(result: ChatResult) -> ChatResult:
    """An edit's answer that the token cap cut is no rewrite (module doc): refused, with why."""
    if result.finish_reason == "length":
        raise RequestFailed(f"the model's answer was cut at {result.completion_tokens} tokens; nothing was changed: "
                            "raise chat.maxTokens or select less")
    return result


def _checked(result: ChatResult) -> ChatResult:
    if result.finish_reason == "error" and not result.content:
        raise RequestFailed(result.error or "the engine failed")
    return result
