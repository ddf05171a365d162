"""What the server learns from the user's accepts, per language (``completion.learn``).

- Single or multi-line: once ``MIN_SAMPLES`` multi-line suggestions were shown in a language and
  their acceptance rate is under half the single-line one, end-of-line suggestions there are cut
  to one line too (Copilot's mid-line rule, extended by evidence).
- ``maxTokens``: once ``MIN_SAMPLES`` suggestions were accepted, the 90th percentile of their
  length in tokens (``tokens.tokens_for_chars``, the one estimate) times ``HEADROOM``, between
  ``MIN_TOKENS`` and the setting: generating tokens nobody keeps only costs latency. ``HEADROOM``
  is 1.8 = 1.5 x 3 / 2.5: the learned values stay those of the former rule (2.5 characters a
  token, 50 % headroom), now said as the shared estimate (3 a token) and a wider margin.
Recomputed from the store at most every ``REFRESH_S``; the read happens in the store's writer
thread (``EventStore.refresh``), so a completion never waits on SQLite and learns from the newest
events read so far (none at first: the settings apply). Rows are validated when read, so a bad
row cannot reach the arithmetic here (issue 19, point 7: ``lines='two'`` failed every completion).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..tokens import tokens_for_chars
from .events import Event
from .store import EventStore

MIN_SAMPLES, MIN_TOKENS, REFRESH_S, RECENT = 20, 32, 300.0, 20_000
HEADROOM = 1.8  # over the 90th percentile of accepted lengths, in tokens


@dataclass(frozen=True)
class Tuned:
    max_tokens: int | None = None  # None: the setting
    single_line: bool = False


def tune(events: list[Event], language: str, max_tokens: int) -> Tuned:
    mine = [e for e in events if e.language == language and e.kind != "next_edit"]  # completions only
    shown = {True: 0, False: 0}
    accepted = {True: 0, False: 0}
    sizes: list[int] = []
    for e in mine:
        multi = e.lines > 1
        if e.event == "shown":
            shown[multi] += 1
        elif e.event == "accepted":
            accepted[multi] += 1
            sizes.append(e.chars)
    single = False
    if shown[True] >= MIN_SAMPLES and shown[False] >= MIN_SAMPLES:
        single = accepted[True] / shown[True] < 0.5 * accepted[False] / shown[False]
    tokens = None
    if len(sizes) >= MIN_SAMPLES:
        p90 = sorted(sizes)[int(len(sizes) * 0.9) - 1]
        tokens = max(MIN_TOKENS, min(max_tokens, int(tokens_for_chars(p90) * HEADROOM)))
    return Tuned(tokens, single)


class Learner:
    """``tuned`` per language, from the newest ``RECENT`` events, read again every ``REFRESH_S``
    (a bounded read in the writer thread, not one per completion)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._events: list[Event] = []
        self._tuned: dict[tuple[str, int], Tuned] = {}
        self._at = time.monotonic()
        store.refresh(RECENT)  # read once at start, so the first suggestions can use it

    def tuned(self, language: str, max_tokens: int) -> Tuned:
        if time.monotonic() - self._at >= REFRESH_S:
            self._at = time.monotonic()
            self.store.refresh(RECENT)
        if self.store.recent is not self._events:  # the writer has read newer events
            self._events = self.store.recent
            self._tuned.clear()
        key = (language, max_tokens)
        if key not in self._tuned:
            self._tuned[key] = tune(self._events, language, max_tokens)
        return self._tuned[key]
