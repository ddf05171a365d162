"""Prompt budgets per model, and what a context-length rejection teaches.

Token counts are estimated (tokens.py), so an engine may count more than we did: the request is
then retried at half the budget (``Budget.halved``, up to ``SHRINKS`` times). Only after
``REJECTIONS_TO_LEARN`` rejections does the smaller budget stick for the model: when one
rejection stuck, a single dense C header halved every later prompt of the quality benchmark's run.
"""

from __future__ import annotations

import logging
from collections import Counter

from ..config import CompletionSettings
from ..tokens import Budget

log = logging.getLogger(__name__)
SHRINKS = 4  # a context-length rejection retries at once with half the budget, this many times
REJECTIONS_TO_LEARN = 3


class Budgets:
    def __init__(self) -> None:
        self.caps: dict[str, int] = {}  # per model, after repeated rejections
        self.rejections: Counter[str] = Counter()

    def total(self, model_id: str, max_model_len: int, settings: CompletionSettings, shrink: int = 0) -> Budget:
        """The whole prompt's budget, halved ``shrink`` times (this request's retries)."""
        cap = min(settings.max_prompt_tokens, self.caps.get(model_id, 1 << 30))
        budget = Budget.for_model(max_model_len, settings.max_tokens, cap)
        for _ in range(shrink):
            budget = budget.halved()
        return budget

    def too_long(self, rid: str, model_id: str, total: Budget) -> None:
        self.rejections[model_id] += 1
        if self.rejections[model_id] >= REJECTIONS_TO_LEARN:
            self.caps[model_id] = total.halved().prompt_tokens
        log.warning("[%s] prompt too long for %s (rejection %d): retrying at half the budget%s", rid, model_id,
                    self.rejections[model_id], ", which sticks" if model_id in self.caps else "")
