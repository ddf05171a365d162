"""Chat and edit requests and results as plain data (the LSP edge converts to and from them;
wire format in docs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Index = tuple[int, int]  # (row, code-point column) in a document


@dataclass(frozen=True)
class Selection:
    uri: str
    start: Index
    end: Index


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    selection: Selection | None = None
    files: list[str] = field(default_factory=list)  # URIs: the current file first, then attachments
    model: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class EditRequest:
    selection: Selection
    instruction: str
    version: int | None = None  # the document version the client took the range on, if it said


class EditRefused(Exception):
    """The edit cannot be done as asked (document not open, a secret file): say why."""


class EditConflict(EditRefused):
    """The document changed under the edit while the model wrote (the rewritten text was edited,
    the document closed): nothing is applied, and the message says why."""


@dataclass
class ChatResult:
    content: str
    model: str
    finish_reason: str  # stop | length | cancelled | loop-cut | error
    prompt_tokens: int = 0
    completion_tokens: int = 0  # streamed chunks with text (engines send about one token each)
    via: str = "chat"  # "chat" or "completions" (template fallback)
    excluded: list[str] = field(default_factory=list)
    excluded_why: dict[str, str] = field(default_factory=dict)  # uri -> why it was left out
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "content": self.content,
            "model": self.model,
            "finishReason": self.finish_reason,
            "usage": {"promptTokens": self.prompt_tokens, "completionTokens": self.completion_tokens},
            "endpoint": self.via,
        }
        if self.excluded:
            out["excludedContext"] = self.excluded
            out["excludedWhy"] = self.excluded_why
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class EditResult:
    answer: ChatResult
    new_text: str
    version: int  # of the document the edit applies to: the current one
    start: Index  # the range to replace, in that version (moved if text was typed above it)
    end: Index
