"""The editor actions on a selection: one catalog, which the server advertises (code actions,
``workspace/executeCommand`` commands, and the list in ``initialize``'s
``capabilities.experimental.vllmCompanion.actions``) and every client invokes by these ids. The
VS Code extension has no list of its own: its manifest entries are checked against this one
(tests/unit/test_actions.py), and it runs chat actions in its chat panel.

``mode`` says what an action does: "chat" answers (in a chat view, or a message), "edit" rewrites
the selection (a versioned WorkspaceEdit, applied). An action without an ``instruction`` needs one
from the user, so it is offered only to clients that can ask for it (``prompts``).
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
