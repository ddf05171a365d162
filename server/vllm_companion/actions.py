"""The editor actions on a selection: one catalog, which the server advertises (code actions,
``workspace/executeCommand`` commands, and the list in ``initialize``'s
``capabilities.experimental.vllmCompanion.actions``) and every client invokes by these ids. The
VS Code extension has no list of its own: its manifest entries are checked against this one
(tests/unit/test_actions.py), and it runs chat actions in its chat panel.

``mode`` says what an action does: "chat" answers (in a chat view, or a message), "edit" rewrites
the selection (a versioned WorkspaceEdit, applied). An action without an ``instruction`` needs one
from the user, so it is offered only to clients that can ask for it (``prompts``).

A command's arguments are ``[uri, range, instruction, version, opened]`` (``arguments``,
``read_call``): the code action fills in the document's version when it was offered and leaves the
instruction null for the client to fill (the third argument, as before); ``version`` is the guard
against a command run after the user typed: the range was computed on that version, and the server
refuses to run on any other (lsp/actions.py). ``opened`` names the opening of the document
(documents.py ``Document.opened``, the server's count of didOpen): a document closed and opened
again starts at version 1 again, so the version alone let an action offered on the old text rewrite
the new one. A client that omits them (a menu with the selection as it is now, an older client's
``[uri, range, instruction]``) names the range on the current text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Action:
    command: str
    title: str
    mode: Literal["chat", "edit"]
    instruction: str | None  # None: the client asks the user (the third command argument)
    kind: str  # LSP CodeActionKind


ACTIONS = (
    Action("vllmCompanion.explain", "Explain", "chat", "Explain what this code does, step by step.",
           "refactor.rewrite"),
    Action("vllmCompanion.fix", "Fix", "edit", "Find and fix the bugs in this code.", "quickfix"),
    Action("vllmCompanion.writeTests", "Write tests", "chat", "Write unit tests for this code.", "refactor.rewrite"),
    Action("vllmCompanion.editWithInstruction", "Edit with instruction…", "edit", None, "refactor.rewrite"),
)
BY_COMMAND = {a.command: a for a in ACTIONS}


def offered(prompts: bool) -> list[Action]:
    """The actions a client gets as code actions (``prompts``: it can ask for an instruction)."""
    return [a for a in ACTIONS if a.instruction is not None or prompts]


def catalog() -> list[dict[str, Any]]:
    return [asdict(a) for a in ACTIONS]


@dataclass(frozen=True)
class Call:
    """One run of an action's command, its arguments read."""

    uri: str
    range: dict[str, Any]
    instruction: str
    version: int | None  # the document version the range was taken on; None: the current one
    opened: int | None = None  # which opening of the document (module doc); None: not said


def arguments(uri: str, rng: dict[str, Any], version: int | None, opened: int | None) -> list[Any]:
    """A code action's command arguments (module doc): the instruction is the client's to fill."""
    return [uri, rng, None, version, opened]


def read_call(action: Action, values: list[Any]) -> Call:
    """The arguments of ``action``'s command; ValueError says what is wrong with them."""
    instruction = action.instruction or (values[2] if len(values) > 2 and isinstance(values[2], str) else "")
    if len(values) < 2 or not isinstance(values[0], str) or not isinstance(values[1], dict) or not instruction:
        wanted = "[uri, range]" if action.instruction else "[uri, range, instruction]"
        raise ValueError(f"{action.command} takes {wanted} (and the document version fourth)")
    version, opened = (values[i] if len(values) > i else None for i in (3, 4))
    if version is not None and type(version) is not int:
        raise ValueError(f"{action.command}: the fourth argument is the document version, an integer or null")
    if opened is not None and type(opened) is not int:
        raise ValueError(f"{action.command}: the fifth argument is the document's opening, an integer or null")
    return Call(values[0], values[1], instruction, version, opened)
