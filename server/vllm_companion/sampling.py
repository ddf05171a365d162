"""Sampling parameters, in one place, each for its own model (token budgets: tokens.py).

- Completion: ``completion.temperature``/``topP``/``maxTokens`` and the family's stop strings.
- Chat: ``chat.temperature``/``topP``/``maxTokens``, for the *chat* model (``chat.model`` may
  differ from the completion model).
- Chat only: the loop guard's penalties (repetition.py), raised from the chat template's own
  ``repetition_penalty`` after repeated loops. Completions never get them: code repeats its
  identifiers on purpose, and on the quality benchmark (scripts/bench_quality.py, 60 cases) the
  raises cost 0.015 of edit similarity (0.317 with, 0.332 without, the raw call's level); the
  stream's loop detectors still cut a completion that loops.
"""

from __future__ import annotations

import zlib
from typing import Any

from .config import ChatSettings, CompletionSettings
from .repetition import LoopHealth

# vLLM priority scheduling: lower runs first. Inline completion is what the user waits for while
# typing; an edit waits in a progress bar; a chat answer streams and can wait a little.
PRIORITY = {"completion": 0, "edit": 1, "next-edit": 1, "chat": 2}  # next-edit: between completion and chat


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
    }
    return _seeded(params, prompt, stop, PRIORITY["completion"] if priority else None)


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


def nextedit_params(
    max_tokens: int, temperature: float, stop: tuple[str, ...], model: str, priority: bool, prompt: str = "",
) -> dict[str, Any]:
    """Next-edit (nextedit/model.py): the family's own budget, temperature (0: the formats are
    trained for greedy decoding) and end markers; seeded from the prompt like a completion; ranked
    between inline completion and chat when priorities are on."""
    params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "model": model}
    return _seeded(params, prompt, stop, PRIORITY["next-edit"] if priority else None)


def _seeded(params: dict[str, Any], prompt: str, stop: tuple[str, ...], rank: int | None) -> dict[str, Any]:
    """``params`` with the prompt's own seed (one prompt, one suggestion), the end markers and the
    rank: what a completion and a next edit ask alike."""
    params["seed"] = zlib.crc32(prompt.encode("utf-8", "surrogatepass")) & 0x7FFFFFFF
    if stop:
        params["stop"] = list(stop)
    if rank is not None:
        params["priority"] = rank
    return params
