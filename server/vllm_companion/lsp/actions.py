"""Code actions and ``workspace/executeCommand`` commands, from the one catalog (actions.py).

A code action on a selection carries its command with ``[uri, range]``; the command runs the
action: "chat" actions answer through ``vllmCompanion/chat`` with the selection as context (and a
message for clients without a chat view), "edit" actions rewrite the selection through
``vllmCompanion/edit`` and apply it. An action that needs an instruction takes it as the third
argument, and is offered only to clients that declare they can ask for one
(``initialize``: ``capabilities.experimental.vllmCompanion.prompts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from ..actions import ACTIONS, Action, offered
from .chat import ChatParams, EditParams, parse, plain, run_chat, run_edit

if TYPE_CHECKING:
    from .server import CompanionServer

KINDS = {"quickfix": types.CodeActionKind.QuickFix, "refactor.rewrite": types.CodeActionKind.RefactorRewrite}


def register(server: CompanionServer) -> None:
    options = types.CodeActionOptions(code_action_kinds=list(dict.fromkeys(KINDS.values())))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, options)
    def code_action(ls: CompanionServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        if params.range.start == params.range.end:
            return None
        rng = params.range
        args = [params.text_document.uri, {"start": _pos(rng.start), "end": _pos(rng.end)}]
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
        values = plain(list(args))
        text = action.instruction or (values[2] if len(values) > 2 and isinstance(values[2], str) else "")
        if len(values) < 2 or not text:
            wanted = "[uri, range]" if action.instruction else "[uri, range, instruction]"
            raise JsonRpcInvalidParams(f"{action.command} takes {wanted}")
        uri, rng = values[0], values[1]
        if action.mode == "edit":
            preview = client_previews(ls)
            edit = {"textDocument": {"uri": uri}, "range": rng, "instruction": text, "apply": not preview}
            done = await run_edit(ls, parse(EditParams, edit))
            return {**done, "preview": done["finishReason"] in ("stop", "length")} if preview else done
        context = {"selection": {"uri": uri, "range": rng}}
        question = {"messages": [{"role": "user", "content": text}], "context": context}
        result = await run_chat(ls, parse(ChatParams, question))
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=result["content"]))
        return result


def _pos(p: types.Position) -> dict[str, int]:
    return {"line": p.line, "character": p.character}
