"""Repetition loops as a health signal of a model.

Every loop the guard cuts is counted per model. After ``THRESHOLD`` loops within ``WINDOW_S``
later requests get a higher ``repetition_penalty`` (vLLM, TGI) and ``frequency_penalty`` (OpenAI
API, llama.cpp, Ollama), stepped up per further loop and bounded (``MAX_*``), starting from
the family's own value (Qwen publishes 1.1 for chat). The counts show in ``vllmCompanion/status``
and, summed over servers in a small file in the runtime dir (``loops.json``, written with the
registry's atomic private write, read bounded), in ``vllm-companion doctor``. Two servers may
count at once: one's update may be lost (read, add, write), the file is never half written.
What is read back is checked like any input (tests/adversarial/test_loop_store.py): counts are
whole numbers below ``MAX_COUNT`` (a 4,300-digit one could not be written back: the request that
cut a loop failed), model names printable and at most ``MAX_NAME`` characters (doctor prints them
to a terminal).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

from . import paths
from .paths import UnsafeDirectory, private_dir, read_private, write_private

log = logging.getLogger(__name__)
THRESHOLD = 3
WINDOW_S = 600.0
STEP = 0.05
MAX_REPETITION_PENALTY = 1.3
MAX_FREQUENCY_PENALTY = 0.6
MAX_STORE_BYTES = 1 << 16  # loops.json: a count per model
MAX_COUNT = 1 << 53  # a count read back (JSON numbers are exact below it everywhere)
MAX_NAME = 256  # characters of a model name read back (didChangeModel's bound on an id)


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
            write_private(self.store, json.dumps(totals))
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


def loop_store() -> Path | None:
    """``loops.json`` in the runtime folder, made private; None (totals not kept) when that folder
    is refused (another user's, under a folder others may write) or cannot be made: a count for
    doctor is not worth the language server, which needs no runtime folder to complete from an
    endpoint."""
    try:
        return private_dir(paths.runtime_dir()) / "loops.json"
    except (OSError, UnsafeDirectory) as exc:
        log.warning("loop totals are not kept: %s", exc)
        return None


def read_totals(store: Path) -> dict[str, int]:
    """The totals in ``store`` ({} when missing, a link, not ours, too long or not JSON); counts
    that are not whole numbers below ``MAX_COUNT`` and names that are not printable or longer than
    ``MAX_NAME`` are left out (the file is in a folder of ours, but never trusted to parse)."""
    raw = read_private(store, MAX_STORE_BYTES)
    try:
        data = json.loads(raw) if raw is not None else {}
    except (ValueError, RecursionError):  # RecursionError: a few thousand nested brackets
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items()
            if type(v) is int and 0 <= v < MAX_COUNT and 0 < len(k) <= MAX_NAME and k.isprintable()}
