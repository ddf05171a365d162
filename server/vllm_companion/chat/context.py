"""Chat prompt assembly: system prompt, fenced context snippets, secrets kept out, budget.

History is trimmed to the chat budget (``tokens.chat_budget``: the model's ``max_model_len``
less the answer's ``max_tokens``): oldest turns go first; the system prompt and the latest
question always stay (the latest question is shortened from its middle as a last resort). Secret
files (privacy.py: ``.env``, keys, ``.ssh/``, the user's ``chat.excludeGlobs``...) never reach the
engine, and inline secrets in every message are replaced by placeholders.

Trimmed before redacted: a message was redacted whole, then cut to the budget, and a 10 MB one
held the event loop 1.5-3.3 s (tests/adversarial/test_chat.py). A text is taken at least one token
per three characters (tokens.py), so one over ``3 * room`` characters cannot fit as it is: an
older turn that long is not redacted to find out (it could only fit if it were mostly secrets)
and ends the history there, and the latest question that long has only its two ends read and
redacted (``redaction.redact_ends``: a cut inside a secret takes the secret whole, as a
placeholder). What is redacted is bounded by the budget, whatever the messages hold.

The system prompt goes through the same: the client's own system messages are joined to ours
(chat/service.py ``_system``) and went out unredacted and whole (a 10 MB one, a token in it:
tests/adversarial/test_chat.py); it is redacted and held to half the budget, cut from its middle,
so ours, at its head, stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..privacy import Privacy, path_of, redact
from ..redaction import redact_ends
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
    system = {"role": "system", "content": _shortened(system_prompt, budget_tokens // 2)}
    turns = [m for m in history if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)]
    if not turns or turns[-1]["role"] != "user":
        turns.append({"role": "user", "content": ""})
    question = turns[-1]["content"]
    if kept:
        question = "\n\n".join([*(fence(s) for s in kept), question]).strip()
    room = budget_tokens - message_tokens(system)
    latest = {"role": "user", "content": _shortened(question, room)}
    return [system, *_older(turns[:-1], room - message_tokens(latest)), latest], excluded


def _older(turns: list[dict[str, str]], room: int) -> list[dict[str, str]]:
    """The most recent of ``turns`` that fit ``room``, redacted; none redacted that cannot fit."""
    older: list[dict[str, str]] = []
    for m in reversed(turns):
        if len(m["content"]) > _most_chars(room):
            break  # cannot fit as it is (module doc)
        message = {"role": m["role"], "content": redact(m["content"]).text}
        if message_tokens(message) > room:
            break
        older.append(message)
        room -= message_tokens(message)
    older.reverse()
    return older[1:] if older and older[0]["role"] == "assistant" else older  # a conversation starts with the user


def _shortened(text: str, room: int) -> str:
    """``text`` redacted, shortened from its middle where it does not fit ``room``; only its ends
    are read where it cannot (module doc)."""
    if len(text) <= _most_chars(room):
        redacted = redact(text).text
        if estimate_tokens(redacted) + MESSAGE_OVERHEAD <= room:
            return redacted
    keep = chars_within(room - CUT_MARK_TOKENS) // 2  # at each end
    head, left_out, tail = redact_ends(text, keep, keep)
    return f"{head}\n[... {left_out} characters left out ...]\n{tail}"


def _most_chars(room: int) -> int:
    """Characters beyond which a text cannot fit ``room`` tokens (three a token at most: tokens.py)."""
    return 3 * max(room, 0)
