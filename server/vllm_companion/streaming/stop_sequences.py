"""Cut at the first stop sequence (the family's special tokens and the request's own stops).

Engines honour ``stop`` themselves, but not all do it for special tokens rendered as text, and a
stop string can straddle two chunks: the search re-reads the last few characters of the old text.
"""

from __future__ import annotations

from collections.abc import Iterable

from .pipeline import Cut


class StopSequences:
    def __init__(self, stops: Iterable[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.longest = max((len(s) for s in self.stops), default=0)

    def feed(self, text: str, start: int) -> Cut | None:
        if not self.stops:
            return None
        lo = max(0, start - self.longest + 1)
        hits = [i for i in (text.find(s, lo) for s in self.stops) if i != -1]
        return Cut(min(hits), "stop") if hits else None
