"""What a context source derived from a document, kept while the document is unchanged.

A document's lines are a snapshot (a tuple, documents.py): the same object while the document is
unchanged, a new one at each edit. So ``lines is kept`` says "same version" in one comparison,
without hashing thousands of lines. A list may change under us, so it is never kept. Both the
similar-snippet windows (snippets.py) and the import records (imports.py) are kept this way:
recomputed on every completion they held the GIL for tens of ms per request (issue 21,
docs/performance.md). The latest version of the ``most`` documents used last is kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class PerVersion(Generic[T]):
    """uri -> (snapshot, what was derived from it), least recently used dropped first."""

    def __init__(self, most: int) -> None:
        self._most = most
        self._kept: OrderedDict[str, tuple[Sequence[str], T]] = OrderedDict()
        self._lock = threading.Lock()  # sources of several completions run in threads at once

    def get(self, uri: str, lines: Sequence[str]) -> T | None:
        """What was kept for ``uri`` if it came from this very snapshot, else None."""
        with self._lock:
            if (hit := self._kept.get(uri)) is None or hit[0] is not lines:
                return None
            self._kept.move_to_end(uri)
            return hit[1]

    def put(self, uri: str, lines: Sequence[str], value: T) -> None:
        """Keep ``value`` for ``uri`` when ``lines`` is a snapshot (a tuple); a list is not kept."""
        if not isinstance(lines, tuple):
            return
        with self._lock:
            self._kept[uri] = (lines, value)
            self._kept.move_to_end(uri)
            while len(self._kept) > self._most:
                self._kept.popitem(last=False)
