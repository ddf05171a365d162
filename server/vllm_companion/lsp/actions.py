"""Code actions and ``workspace/executeCommand`` commands, from the one catalog (actions.py).

A code action on a selection carries its command with ``[uri, range, null, version, opened]`` (the
document's version and opening when it was offered, actions.py ``arguments``); the command runs the action:
"chat" actions answer through ``vllmCompanion/chat`` with the selection as context (and a message
for clients without a chat view), "edit" actions rewrite the selection through
``vllmCompanion/edit`` and apply it. An action that needs an instruction takes it as the third
argument, and is offered only to clients that declare they can ask for one
(``initialize``: ``capabilities.experimental.vllmCompanion.prompts``).

A command run after the user typed (the menu stayed open, a client ran it late) names a range on
text that is no longer there: an edit would replace the wrong lines, a question would quote them.
The document's version is checked when the command runs, and a moved document answers
RequestFailed ("run it again") with nothing done. The range is not rebased: chat/rebase.py follows
a document only while an edit is pending, from changes told as they apply, and the store keeps no
history between versions; following every offered action instead (editors ask for code actions
at each cursor move) would cost every keystroke for commands that are mostly never run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from ..actions import ACTIONS, Action, Call, arguments, offered, read_call
from ..privacy import path_of
from .chat import ChatParams, EditParams, RequestFailed, parse, plain, run_chat, run_edit

if TYPE_CHECKING:
    from .server import CompanionServer

KINDS = {"quickfix": types.CodeActionKind.QuickFix, "refactor.rewrite": types.CodeActionKind.RefactorRewrite}


def register(server: CompanionServer) -> None:
    options = types.CodeActionOptions(code_action_kinds=list(dict.fromkeys(KINDS.values())))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, options)
    def code_action(ls: CompanionServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        if params.range.start == params.range.end:
            return None
        rng, uri = params.range, params.text_document.uri
        doc = ls.services.documents.get(uri)  # the version this range was computed on
        args = arguments(uri, {"start": _pos(rng.start), "end": _pos(rng.end)}, doc.version if doc else None,
                         doc.opened if doc else None)
        return [
            types.CodeAction(
                title=f"vLLM Companion: {action.title}",
                kind=KINDS[action.kind],
                command=types.Command(title=action.title, command=action.command, arguments=args),
            )
            for action in offered(client_prompts(ls))
        ]

    for action in ACTIONS:
        _register_command(server, action)


def client_prompts(ls: CompanionServer) -> bool:
    return _declares(ls, "prompts")


def client_previews(ls: CompanionServer) -> bool:
    return _declares(ls, "previewEdits")


def _declares(ls: CompanionServer, flag: str) -> bool:
    experimental = ls.client_capabilities.experimental
    ours = experimental.get("vllmCompanion") if isinstance(experimental, dict) else None
    return isinstance(ours, dict) and ours.get(flag) is True


def _register_command(server: CompanionServer, action: Action) -> None:
    @server.command(action.command)
    async def run(server_: LanguageServer, *args: Any) -> dict[str, Any]:
        # pygls evaluates these annotations at run time: name no type-checking-only class here
        ls = cast("CompanionServer", server_)
        try:
            call = read_call(action, plain(list(args)))
        except ValueError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc
        _unmoved(ls, call)
        if action.mode == "edit":  # the version goes along: chat/service.py checks it again
            preview = client_previews(ls)
            edit = {"textDocument": {"uri": call.uri, "version": call.version}, "range": call.range,
                    "instruction": call.instruction, "apply": not preview}
            done = await run_edit(ls, parse(EditParams, edit))
            return {**done, "preview": done["finishReason"] == "stop"} if preview else done
        context = {"selection": {"uri": call.uri, "range": call.range}}
        question = {"messages": [{"role": "user", "content": call.instruction}], "context": context}
        result = await run_chat(ls, parse(ChatParams, question))
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=result["content"]))
        return result


def _unmoved(ls: CompanionServer, call: Call) -> None:
    """The document is still the one, at the version, the command's range was taken on (module
    doc): not closed since (a chat action quoted nothing and asked the model about no code), nor
    closed and opened again (it starts at version 1 again: an edit offered on the old text
    rewrote the new one, tests/adversarial/test_edits.py). A call that names no version is left
    to the chat and edit services."""
    doc = ls.services.documents.get(call.uri)
    if call.version is None:
        return
    if doc is None or (call.opened is not None and doc.opened != call.opened):
        raise RequestFailed(f"{path_of(call.uri)} was closed since the action was offered; nothing was done: "
                            "run the action again")
    if doc.version != call.version:
        raise RequestFailed(f"{path_of(call.uri)} changed since the action was offered (version {call.version}, "
                            f"now {doc.version}); nothing was done: run the action again")


def _pos(p: types.Position) -> dict[str, int]:
    return {"line": p.line, "character": p.character}
