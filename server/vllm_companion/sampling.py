"""Sampling parameters and token budgets, in one place, each for its own model.

- Completion: ``completion.temperature``/``topP``/``maxTokens`` and the family's stop strings;
  its prompt budget is the model's ``max_model_len`` minus ``maxTokens`` and the template's
  overhead, capped by ``completion.maxPromptTokens`` (``Budget``).
- Chat: ``chat.temperature``/``topP``/``maxTokens``; its history budget is the *chat* model's
  ``max_model_len`` (``chat.model`` may differ from the completion model) minus the answer.
- Chat only: the loop guard's penalties (repetition.py), raised from the chat template's own
  ``repetition_penalty`` after repeated loops. Completions never get them: code repeats its
  identifiers on purpose, and on the quality benchmark (scripts/bench_quality.py, 60 cases) the
  raises cost 0.015 of edit similarity (0.317 with, 0.332 without, the raw call's level); the
  stream's loop detectors still cut a completion that loops.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from .config import ChatSettings, CompletionSettings
from .repetition import LoopHealth

TEMPLATE_OVERHEAD = 32  # tokens reserved for FIM tokens and file headers
# vLLM priority scheduling: lower runs first. Inline completion is what the user waits for while
# typing; an edit waits in a progress bar; a chat answer streams and can wait a little.
PRIORITY = {"completion": 0, "edit": 1, "chat": 2}
CHAT_OVERHEAD = 16  # tokens reserved for the chat template's own markup


@dataclass(frozen=True)
class Budget:
    """What a completion prompt may hold in all, in tokens."""

    prompt_tokens: int

    @classmethod
    def for_model(cls, max_model_len: int, max_tokens: int, max_prompt_tokens: int) -> Budget:
        room = max_model_len - max_tokens - TEMPLATE_OVERHEAD
        return cls(max(16, min(room, max_prompt_tokens)))

    def less(self, tokens: int) -> Budget:
        return Budget(max(16, self.prompt_tokens - tokens))

    def halved(self) -> Budget:
        return Budget(max(16, self.prompt_tokens // 2))


def chat_budget(max_model_len: int, max_tokens: int) -> int:
    """Tokens the chat messages may use, so that the answer still fits."""
    return max(256, max_model_len - max_tokens - CHAT_OVERHEAD)


def completion_params(
    settings: CompletionSettings, stop: tuple[str, ...], priority: bool = False, max_tokens: int | None = None,
    prompt: str = "",
) -> dict[str, Any]:
    """``max_tokens``: learned from the user's accepts (telemetry/tuning.py), else the setting.
    ``seed``: from the prompt, so one prompt always gets one suggestion (typing back to where you
    were shows what you saw, and the quality benchmark's deltas are the stages', not the dice's)."""
    params: dict[str, Any] = {
        "max_tokens": max_tokens or settings.max_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "seed": zlib.crc32(prompt.encode("utf-8", "surrogatepass")) & 0x7FFFFFFF,
    }
    if stop:
        params["stop"] = list(stop)
    if priority:
        params["priority"] = PRIORITY["completion"]
    return params


def chat_params(
    settings: ChatSettings, model: str, base_penalty: float, loops: LoopHealth,
    max_tokens: int | None = None, temperature: float | None = None, priority: int | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "max_tokens": max_tokens or settings.max_tokens,
        "temperature": settings.temperature if temperature is None else temperature,
        "top_p": settings.top_p,
        "model": model,
        **loops.penalties(model, base_penalty),
    }
    if priority is not None:
        params["priority"] = priority
    return params
