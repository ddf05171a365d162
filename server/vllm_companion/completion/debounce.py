"""Adaptive debounce: wait after a keystroke about as long as this user pauses between keys.

Rule (Tabby adapts between 100 and 1000 ms the same way): from the last ``SAMPLES`` intervals
between document changes that look like typing (under ``TYPING_S``), wait their 75th percentile
times ``FACTOR``, clamped to [``FLOOR_MS``, ``CEILING_MS``]; until ``MIN_SAMPLES`` are known, the
configured ``completion.debounceMs``. A fast typist gets suggestions sooner; a slow one stops
paying for requests made between two of their keys (scripts/bench_debounce.py).
"""

from __future__ import annotations

import time
from collections import deque

SAMPLES, MIN_SAMPLES, TYPING_S, FACTOR = 40, 8, 1.0, 1.25
FLOOR_MS, CEILING_MS = 100, 1000


class AdaptiveDebounce:
    def __init__(self) -> None:
        self.intervals: deque[float] = deque(maxlen=SAMPLES)
        self._last: float | None = None

    def keystroke(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self._last is not None and 0 < now - self._last < TYPING_S:
            self.intervals.append(now - self._last)
        self._last = now

    def delay_ms(self, configured: int) -> int:
        if len(self.intervals) < MIN_SAMPLES:
            return configured
        p75 = sorted(self.intervals)[(len(self.intervals) * 3) // 4]
        return int(min(CEILING_MS, max(FLOOR_MS, p75 * 1000 * FACTOR)))
