"""Chat prompt assembly: system prompt, fenced context snippets, secrets kept out, budget.

History is trimmed to the chat budget (``tokens.chat_budget``: the model's ``max_model_len``
less the answer's ``max_tokens``): oldest turns go first; the system prompt and the latest
question always stay (the latest question is shortened from its middle as a last resort). Secret
files (privacy.py: ``.env``, keys, ``.ssh/``, the user's ``chat.excludeGlobs``...) never reach the
engine, and inline secrets in every message are replaced by placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..privacy import Privacy, path_of, redact
from ..tokens import MESSAGE_OVERHEAD, chars_within, estimate_tokens

SYSTEM_PROMPT = (
    "You are vLLM Companion, a coding assistant inside the user's editor. Answer concisely and "
    "precisely. Put code in fenced blocks with a language tag. When you change code, show the "
    "changed code, not a description of it."
)
CUT_MARK_TOKENS = 16  # the "[... N characters left out ...]" line in a shortened message
FENCE_LANG = {"python": "python", "typescript": "ts", "javascript": "js", "rust": "rust", "go": "go"}


@dataclass(frozen=True)
class Snippet:
    uri: str
    text: str
    language: str = ""
    label: str = ""  # e.g. "selection, lines 3-9"


def fence(snippet: Snippet) -> str:
    lang = FENCE_LANG.get(snippet.language, snippet.language)
    ticks = "````" if "```" in snippet.text else "```"
    title = path_of(snippet.uri).rsplit("/", 1)[-1] + (f" ({snippet.label})" if snippet.label else "")
    return f"{title}:\n{ticks}{lang}\n{snippet.text.rstrip()}\n{ticks}"


def message_tokens(message: dict[str, str]) -> int:
    return estimate_tokens(message["content"]) + MESSAGE_OVERHEAD


def build_messages(
    history: list[dict[str, str]],
    snippets: list[Snippet],
    budget_tokens: int,
    system_prompt: str,
    privacy: Privacy,
) -> tuple[list[dict[str, str]], list[str]]:
    """Messages to send, and the URIs left out as secrets (the server's ``Privacy``: its rules)."""
    excluded = [s.uri for s in snippets if privacy.is_secret(s.uri)]
    kept = [s for s in snippets if s.uri not in excluded]
    system = {"role": "system", "content": system_prompt}
    turns = [
        {"role": m["role"], "content": redact(m["content"]).text}
        for m in history
        if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)
    ]
    if not turns or turns[-1]["role"] != "user":
        turns.append({"role": "user", "content": ""})
    latest = dict(turns[-1])
    if kept:
        context = redact("\n\n".join(fence(s) for s in kept)).text
        latest["content"] = f"{context}\n\n{latest['content']}".strip()
    room = budget_tokens - message_tokens(system)
    latest = _shorten(latest, room)
    room -= message_tokens(latest)
    older: list[dict[str, str]] = []
    for m in reversed(turns[:-1]):
        cost = message_tokens(m)
        if cost > room:
            break
        older.insert(0, m)
        room -= cost
    if older and older[0]["role"] == "assistant":
        older = older[1:]  # a conversation starts with the user
    return [system, *older, latest], excluded


def _shorten(message: dict[str, str], room: int) -> dict[str, str]:
    text = message["content"]
    if estimate_tokens(text) + MESSAGE_OVERHEAD <= room:
        return message
    keep = chars_within(room - CUT_MARK_TOKENS)
    head, tail = text[: keep // 2], text[len(text) - keep // 2 :]
    return {**message, "content": f"{head}\n[... {len(text) - keep} characters left out ...]\n{tail}"}
