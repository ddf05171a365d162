"""Token budgets, said once: how many tokens a text is taken to be, what a prompt may hold, and
how it is shared between the answer, the context beyond the file and the window at the cursor.

A leaf module (it imports nothing from the package): completion/, context/ and chat/ take their
arithmetic from here, so none of them imports another for it and a change is made in one file.

- The estimate (``estimate_tokens``): UTF-8 bytes / 3, rounded up. Code averages 3.5-4 characters
  per token and CJK about one token per character (three bytes), so it counts high: a prompt comes
  out smaller than the engine allows, not larger. An engine that still counts more rejects the
  prompt for its length, and the completion is retried at half the budget (completion/budgets.py).
  Where only a length is known, ``tokens_for_chars`` applies it to as many ASCII characters.
- A completion prompt (``Budget.for_model``): the model's ``max_model_len`` less the answer
  (``completion.maxTokens``) and the template's overhead, capped by ``completion.maxPromptTokens``.
  Of it, the context beyond the file takes at most ``CONTEXT_SHARE`` and ``completion.contextTokens``
  (``Budget.context``), split between the sources by ``SOURCE_SHARES``; what the context did not
  use goes to the window (``Budget.less``), whose part after the cursor is at most ``SUFFIX_SHARE``.
- A chat (``chat_budget``): the *chat* model's ``max_model_len`` less the answer and the template's
  markup; each message costs ``MESSAGE_OVERHEAD`` more than its text.
- ``STEP``: the window's far edges and the context's cache block move in steps of this many lines,
  so consecutive prompts share their head and vLLM's automatic prefix caching reuses it
  (``stability`` in scripts/bench_prefix.py).
"""

from __future__ import annotations

from dataclasses import dataclass

STEP = 16  # lines: the granularity of the window's edges and of the context's cursor block
MIN_PROMPT = 16  # tokens: the smallest completion prompt budget, however little room is left
TEMPLATE_OVERHEAD = 32  # tokens reserved for FIM tokens and file headers
CONTEXT_SHARE = 0.25  # of the prompt budget, at most, for the context beyond the file
SUFFIX_SHARE = 0.25  # of the window's budget, at most, for the text after the cursor
# Of the context's budget, per source (context/gather.py): imported definitions and similar
# snippets of open files alike, recent edits less (a few lines around each are enough).
SOURCE_SHARES = {"imports": 0.4, "open-files": 0.4, "recent-edits": 0.2}
CHAT_OVERHEAD = 16  # tokens reserved for the chat template's own markup
MIN_CHAT = 256  # tokens: the smallest chat budget
MESSAGE_OVERHEAD = 4  # tokens per chat message for its role markup


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` is taken to be: its UTF-8 bytes / 3, plus one (never zero)."""
    if text.isascii():
        return len(text) // 3 + 1
    return len(text.encode("utf-8", "surrogatepass")) // 3 + 1


def tokens_for_chars(chars: int) -> int:
    """Tokens a text of ``chars`` characters is taken to be when only its length is known (the
    telemetry store keeps accepted suggestions' lengths, never their text): ``estimate_tokens``
    of as many ASCII characters, the rule code mostly follows."""
    return max(0, chars) // 3 + 1


def chars_within(tokens: int) -> int:
    """Characters kept where a text must be cut to about ``tokens``: 1.5 a token, between ASCII's
    three (``estimate_tokens``) and CJK's one."""
    return max(0, tokens * 3 // 2)


@dataclass(frozen=True)
class Budget:
    """What a completion prompt may hold in all, in tokens."""

    prompt_tokens: int

    @classmethod
    def for_model(cls, max_model_len: int, max_tokens: int, max_prompt_tokens: int) -> Budget:
        room = max_model_len - max_tokens - TEMPLATE_OVERHEAD
        return cls(max(MIN_PROMPT, min(room, max_prompt_tokens)))

    def less(self, tokens: int) -> Budget:
        return Budget(max(MIN_PROMPT, self.prompt_tokens - tokens))

    def halved(self) -> Budget:
        return Budget(max(MIN_PROMPT, self.prompt_tokens // 2))

    def context(self, cap: int) -> int:
        """Tokens the context beyond the file may take: ``CONTEXT_SHARE`` of this, at most ``cap``
        (``completion.contextTokens``)."""
        return min(cap, int(self.prompt_tokens * CONTEXT_SHARE))

    def suffix(self) -> int:
        """Tokens the window may spend after the cursor."""
        return int(self.prompt_tokens * SUFFIX_SHARE)


def source_share(context_tokens: int, source: str) -> int:
    """The part of the context's budget one source (``SOURCE_SHARES``) may fill."""
    return int(context_tokens * SOURCE_SHARES[source])


def chat_budget(max_model_len: int, max_tokens: int) -> int:
    """Tokens the chat messages may use, so that the answer still fits."""
    return max(MIN_CHAT, max_model_len - max_tokens - CHAT_OVERHEAD)
