"""What one telemetry row is, as written and as read back: the event (never the code itself), the
table's schema, the bounded read of the newest rows, each checked (``valid``: a row someone else
wrote is skipped, never raised), and the per-language/kind/model summaries ``stats`` prints.

Split from store.py along its seam: store.py owns the writer thread, the queue and the
connection; this module owns no state (issue 19, point 7: one bad row failed every completion,
hence ``valid`` on every read).
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

MAX_LABEL = 200  # characters of a language, kind or model name
MAX_COUNT = 1 << 31
EVENTS = ("shown", "accepted", "partial", "dismissed", "survived30", "survived120")
VALUED = ("partial", "survived30", "survived120")  # events that carry a number
SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    ts REAL, event TEXT, language TEXT, kind TEXT, model TEXT, lines INTEGER, chars INTEGER, value REAL)"""
_NUM = "CASE WHEN typeof({0}) IN ('integer', 'real', 'null') THEN {0} ELSE 'bad' END"
QUERY = (f"SELECT substr(event, 1, 16), substr(language, 1, {MAX_LABEL + 1}), substr(kind, 1, {MAX_LABEL + 1}), "
         f"substr(model, 1, {MAX_LABEL + 1}), {_NUM.format('lines')}, {_NUM.format('chars')}, {_NUM.format('value')} "
         "FROM events WHERE ts >= ? ORDER BY rowid DESC LIMIT ?")


@dataclass(frozen=True)
class Event:
    event: str
    language: str
    kind: str
    model: str
    lines: int
    chars: int
    value: float | None = None


def valid(row: tuple[Any, ...]) -> Event | None:
    """The event in a row as read back, or None for a row this program would not have written."""
    name, language, kind, model, lines, chars, value = row
    if name not in EVENTS or not all(isinstance(s, str) and len(s) <= MAX_LABEL for s in (language, kind, model)):
        return None
    if not all(type(n) is int and 0 <= n < MAX_COUNT for n in (lines, chars)):
        return None
    if (value is None) != (name not in VALUED):
        return None
    if value is not None:
        if type(value) not in (int, float) or not math.isfinite(value) or not 0 <= value < MAX_COUNT:
            return None
        if name != "partial" and value > 1:
            return None
    return Event(name, language, kind, model, lines, chars, None if value is None else float(value))


def read_events(db: sqlite3.Connection, since: float, limit: int) -> list[Event]:
    """The valid events since ``since`` (time.time()), at most the newest ``limit``, oldest first."""
    rows = db.execute(QUERY, (since, limit)).fetchall()
    return [e for row in reversed(rows) if (e := valid(row)) is not None]


def summarize(events: list[Event], by: str) -> dict[str, dict[str, Any]]:
    """Per value of ``by`` (language, kind or model): counts, acceptance rate, mean survival."""
    groups: defaultdict[str, defaultdict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        groups[getattr(e, by)][e.event].append(1.0 if e.value is None else e.value)
    out: dict[str, dict[str, Any]] = {}
    for key, got in sorted(groups.items()):
        shown = len(got["shown"])
        out[key] = {
            "shown": shown,
            "accepted": len(got["accepted"]),
            "partial": len(got["partial"]),
            "dismissed": len(got["dismissed"]),
            "rate": len(got["accepted"]) / shown if shown else None,
            "survived30": _mean(got["survived30"]),
            "survived120": _mean(got["survived120"]),
        }
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
