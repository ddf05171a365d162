"""``vllmCompanion/chat``, ``vllmCompanion/edit``, code actions and their commands.

Protocol (types and examples in docs/protocol.md): chat deltas stream as ``$/progress`` on the
request's ``partialResultToken`` with value ``{"delta": text}``; the result is the whole answer
with metadata. Backend failures before any text are JSON-RPC errors (-32803 RequestFailed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from lsprotocol import types
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from ..backend import BackendError
from ..chat.context import SYSTEM_PROMPT, Snippet, build_messages
from ..chat.edit import edit_messages, extract_code
from ..chat.service import ChatResult
from ..privacy import path_of, redact

if TYPE_CHECKING:
    from ..server import CompanionServer

CHAT, EDIT = "vllmCompanion/chat", "vllmCompanion/edit"
ACTIONS = {
    "vllmCompanion.explain": ("Explain", "Explain what this code does, step by step."),
    "vllmCompanion.fix": ("Fix", "Find and fix the bugs in this code."),
    "vllmCompanion.writeTests": ("Write tests", "Write unit tests for this code."),
    "vllmCompanion.editWithInstruction": ("Edit with instruction…", ""),
}


class _Params(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Message(_Params):
    role: Literal["system", "user", "assistant"]
    content: str


class Selection(_Params):
    uri: str
    range: dict[str, Any]


class ChatContext(_Params):
    selection: Selection | None = None
    current_file: str | None = None  # a URI
    files: list[str] = Field(default_factory=list)  # more URIs the user attached


class ChatParams(_Params):
    messages: list[Message] = Field(min_length=1)
    context: ChatContext | None = None
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    partial_result_token: int | str | None = None
    work_done_token: int | str | None = None


class EditParams(_Params):
    text_document: dict[str, Any]
    range: dict[str, Any]
    instruction: str = Field(min_length=1)
    apply: bool = False
    partial_result_token: int | str | None = None


_ParamsT = TypeVar("_ParamsT", bound=_Params)


def plain(obj: Any) -> Any:
    """pygls hands custom params over as namedtuples: back to JSON-like data."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


def parse(model: type[_ParamsT], params: Any) -> _ParamsT:
    try:
        return model.model_validate(plain(params))
    except ValidationError as exc:
        raise JsonRpcInvalidParams(f"invalid params: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc


def register(server: CompanionServer) -> None:
    @server.feature(CHAT)
    async def chat(ls: CompanionServer, params: Any) -> dict[str, Any]:
        return await run_chat(ls, parse(ChatParams, params))

    @server.feature(EDIT)
    async def edit(ls: CompanionServer, params: Any) -> dict[str, Any]:
        return await run_edit(ls, parse(EditParams, params))

    kinds = [types.CodeActionKind.RefactorRewrite, types.CodeActionKind.QuickFix]

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=kinds))
    def code_action(ls: CompanionServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        if params.range.start == params.range.end:
            return None
        rng = params.range
        args = [params.text_document.uri, {"start": _pos(rng.start), "end": _pos(rng.end)}]
        kinds = {"vllmCompanion.fix": types.CodeActionKind.QuickFix}
        return [
            types.CodeAction(
                title=f"vLLM Companion: {title}",
                kind=kinds.get(command, types.CodeActionKind.RefactorRewrite),
                command=types.Command(title=title, command=command, arguments=args),
            )
            for command, (title, _) in ACTIONS.items()
        ]

    for name, (_, instruction) in ACTIONS.items():
        _register_command(server, name, instruction)


async def run_chat(ls: CompanionServer, p: ChatParams) -> dict[str, Any]:
    snippets, refused = _snippets(ls, p.context)
    max_tokens = p.max_tokens or ls.config.chat.max_tokens
    try:
        budget = await ls.chat.budget(max_tokens)
    except BackendError as exc:
        raise RequestFailed(str(exc)) from exc
    history = [m.model_dump() for m in p.messages]
    system = ls.config.chat.system_prompt or _system(history)
    messages, excluded = build_messages(history, snippets, budget, system, ls.privacy)
    result = await _answer(
        ls, messages, p.partial_result_token, p.work_done_token, max_tokens=max_tokens, model=p.model
    )
    result.excluded = excluded + [uri for uri, _ in refused]
    result.excluded_why = {uri: "a secret file" for uri in excluded} | dict(refused)
    return result.to_json()


async def run_edit(ls: CompanionServer, p: EditParams) -> dict[str, Any]:
    uri = str(p.text_document.get("uri", ""))
    rng = _range(p.range)
    doc = ls.documents.get(uri)
    if doc is None:
        raise JsonRpcInvalidParams(f"document not open: {uri}")
    if ls.privacy.is_secret(uri):
        raise JsonRpcInvalidParams(f"{path_of(uri)} is a secret file: vLLM Companion never sends it to the engine")
    code = doc.text_in(rng.start, rng.end, ls.encoding)
    hidden = redact(code)  # secrets in the selection stay here and are put back into the edit
    messages = edit_messages(redact(p.instruction).text, hidden.text, path_of(uri), doc.language_id)
    result = await _answer(ls, messages, p.partial_result_token, None, temperature=0.1)
    new_text = hidden.restore(extract_code(result.content, hidden.text))
    # Versioned: the editor refuses the edit if the document changed while the model was writing.
    target = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=doc.version)
    change = types.TextDocumentEdit(text_document=target, edits=[types.TextEdit(range=rng, new_text=new_text)])
    workspace_edit = types.WorkspaceEdit(document_changes=[change])
    applied = False
    if p.apply and result.finish_reason in ("stop", "length"):
        reply = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=workspace_edit, label="vLLM Companion: edit")
        )
        applied = bool(reply and reply.applied)
    return {"edit": workspace_edit, "applied": applied, **result.to_json()}


def _register_command(server: CompanionServer, name: str, instruction: str) -> None:
    """Explain / write tests answer in chat (and a message); fix / edit apply a WorkspaceEdit."""

    @server.command(name)
    async def run(server_: LanguageServer, *args: Any) -> dict[str, Any]:
        # pygls evaluates these annotations at run time: name no type-checking-only class here
        ls = cast("CompanionServer", server_)
        values = plain(list(args))
        if len(values) < 2:
            raise JsonRpcInvalidParams(f"{name} takes [uri, range, instruction?]")
        uri, rng = values[0], values[1]
        text = instruction or (values[2] if len(values) > 2 else "")
        if not text:
            raise JsonRpcInvalidParams(f"{name} needs an instruction as its third argument")
        if name in ("vllmCompanion.fix", "vllmCompanion.editWithInstruction"):
            edit = {"textDocument": {"uri": uri}, "range": rng, "instruction": text, "apply": True}
            return await run_edit(ls, parse(EditParams, edit))
        selection = {"uri": uri, "range": rng}
        question = {"messages": [{"role": "user", "content": text}], "context": {"selection": selection}}
        result = await run_chat(ls, parse(ChatParams, question))
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=result["content"]))
        return result


class RequestFailed(JsonRpcException):
    CODE = -32803  # LSP RequestFailed
    MESSAGE = "Request failed"


async def _answer(
    ls: CompanionServer,
    messages: list[dict[str, str]],
    partial_token: int | str | None,
    work_token: int | str | None,
    **kwargs: Any,
) -> ChatResult:
    def on_delta(text: str) -> None:
        if partial_token is not None:
            ls.protocol.notify(types.PROGRESS, types.ProgressParams(token=partial_token, value={"delta": text}))

    if work_token is not None:
        ls.work_done_progress.begin(work_token, types.WorkDoneProgressBegin(title="vLLM Companion", cancellable=True))
    try:
        result = await ls.chat.answer(messages, on_delta, **kwargs)
    except BackendError as exc:
        raise RequestFailed(str(exc)) from exc
    finally:
        if work_token is not None:
            ls.work_done_progress.end(work_token, types.WorkDoneProgressEnd())
    if result.finish_reason == "error" and not result.content:
        raise RequestFailed(result.error or "the engine failed")
    return result


def _pos(p: types.Position) -> dict[str, int]:
    return {"line": p.line, "character": p.character}


def _range(raw: dict[str, Any]) -> types.Range:
    try:
        return types.Range(
            start=types.Position(line=int(raw["start"]["line"]), character=int(raw["start"]["character"])),
            end=types.Position(line=int(raw["end"]["line"]), character=int(raw["end"]["character"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams("range must be {start: {line, character}, end: {line, character}}") from exc


def _snippets(ls: CompanionServer, context: ChatContext | None) -> tuple[list[Snippet], list[tuple[str, str]]]:
    """Context from the selection and attached files, and the attachments refused (with why)."""
    if context is None:
        return [], []
    out: list[Snippet] = []
    refused: list[tuple[str, str]] = []
    if context.selection is not None:
        doc = ls.documents.get(context.selection.uri)
        if doc is not None:
            rng = _range(context.selection.range)
            text = doc.text_in(rng.start, rng.end, ls.encoding)
            label = f"selection, lines {rng.start.line + 1}-{rng.end.line + 1}"
            out.append(Snippet(doc.uri, text, doc.language_id, label))
    for uri in [u for u in [context.current_file, *context.files][:32] if u]:
        doc = ls.documents.get(uri)
        if doc is not None:  # open in the editor: the secret filter still applies (build_messages)
            out.append(Snippet(uri, doc.text, doc.language_id))
            continue
        path, why = ls.privacy.readable(uri)
        content = ls.privacy.read(uri) if path is not None else None
        if content is None:
            refused.append((uri, why or "not text"))
        else:
            out.append(Snippet(uri, content, Path(path_of(uri)).suffix.lstrip(".")))
    return out, refused


def _system(history: list[dict[str, str]]) -> str:
    given = [m["content"] for m in history if m["role"] == "system"]
    return "\n\n".join([SYSTEM_PROMPT, *given])

