"""Repetition loops as a health signal of a model.

Every loop the guard cuts is counted per model. After ``THRESHOLD`` loops within ``WINDOW_S``
later requests get a higher ``repetition_penalty`` (vLLM, TGI) and ``frequency_penalty`` (OpenAI
API, llama.cpp, Ollama), stepped up per further loop and bounded (``MAX_*``), starting from
the family's own value (Qwen publishes 1.1 for chat). The counts show in ``vllmCompanion/status``
and, summed over servers in a small file in the runtime dir, in ``vllm-companion doctor``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

THRESHOLD = 3
WINDOW_S = 600.0
STEP = 0.05
MAX_REPETITION_PENALTY = 1.3
MAX_FREQUENCY_PENALTY = 0.6


class LoopHealth:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        store: Path | None = None,
        on_loop: Callable[[str, int], None] = lambda model, total: None,
    ) -> None:
        self._clock = clock
        self.on_loop = on_loop  # (model, total loops): the server shows it in vllmCompanion/status
        self._events: defaultdict[str, deque[float]] = defaultdict(deque)
        self.total: defaultdict[str, int] = defaultdict(int)
        self.store = store  # totals for `vllm-companion doctor`, summed over servers

    def record(self, model: str) -> int:
        """Count one loop; returns the loops within the window."""
        self.total[model] += 1
        self._persist(model)
        self.on_loop(model, self.total[model])
        events = self._events[model]
        events.append(self._clock())
        return self.recent(model)

    def _persist(self, model: str) -> None:
        if self.store is None:
            return
        try:
            totals = read_totals(self.store)
            totals[model] = totals.get(model, 0) + 1
            self.store.write_text(json.dumps(totals))
        except OSError:
            pass  # a count for doctor is not worth failing a request over

    def recent(self, model: str) -> int:
        events = self._events[model]
        while events and self._clock() - events[0] > WINDOW_S:
            events.popleft()
        return len(events)

    def penalties(self, model: str, base_repetition: float) -> dict[str, float]:
        """Sampling parameters to add for ``model`` now ({} while it is healthy)."""
        excess = self.recent(model) - THRESHOLD + 1
        if excess <= 0:
            return {}
        repetition = min(MAX_REPETITION_PENALTY, max(base_repetition, 1.0) + STEP * excess)
        frequency = min(MAX_FREQUENCY_PENALTY, 0.1 * excess)
        return {"repetition_penalty": round(repetition, 3), "frequency_penalty": round(frequency, 3)}


def read_totals(store: Path) -> dict[str, int]:
    try:
        data = json.loads(store.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
