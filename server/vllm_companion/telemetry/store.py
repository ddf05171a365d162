"""Acceptance events in an SQLite file on this machine, never sent anywhere.

Where: ``$VLLM_COMPANION_STATE``, else ``$XDG_STATE_HOME/vllm-companion``, else
``~/.local/state/vllm-companion``; the folder is 0700 (registry.private_dir). What: one row per
event (shown, accepted, partial, dismissed, survived30, survived120) with the language, cursor
kind, model, the suggestion's size and, for survival and partial accepts, a number; never the
code itself. Bounded: the oldest rows go past ``MAX_ROWS``. A store that cannot be opened
(read-only home, a full disk) is switched off with one warning: telemetry never breaks completion.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.registry import private_dir

log = logging.getLogger(__name__)
MAX_ROWS = 100_000
EVENTS = ("shown", "accepted", "partial", "dismissed", "survived30", "survived120")
SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    ts REAL, event TEXT, language TEXT, kind TEXT, model TEXT, lines INTEGER, chars INTEGER, value REAL)"""


def state_dir() -> Path:
    base = os.environ.get("VLLM_COMPANION_STATE") or os.environ.get("XDG_STATE_HOME")
    if base:
        return Path(base) / "vllm-companion" if "VLLM_COMPANION_STATE" not in os.environ else Path(base)
    return Path.home() / ".local" / "state" / "vllm-companion"


@dataclass(frozen=True)
class Event:
    event: str
    language: str
    kind: str
    model: str
    lines: int
    chars: int
    value: float | None = None


class EventStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / "telemetry.sqlite3"
        self._db: sqlite3.Connection | None = None
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and not self._broken:
            try:
                private_dir(self.path.parent)
                self._db = sqlite3.connect(self.path, timeout=1.0)
                os.chmod(self.path, 0o600)
                self._db.execute("PRAGMA journal_mode=WAL")  # several servers may write at once
                self._db.execute(SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                log.warning("telemetry store %s unusable, telemetry off: %s", self.path, exc)
                self._broken = True
        return self._db

    def add(self, event: Event) -> None:
        db = self._connect()
        if db is None:
            return
        row = (time.time(), event.event, event.language, event.kind, event.model, event.lines, event.chars, event.value)
        try:
            with db:
                db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
                db.execute("DELETE FROM events WHERE rowid <= (SELECT MAX(rowid) FROM events) - ?", (MAX_ROWS,))
        except sqlite3.Error as exc:
            log.warning("telemetry event not stored: %s", exc)

    def events(self, since_s: float = 30 * 86400, limit: int = MAX_ROWS) -> list[Event]:
        """The events of the last ``since_s`` seconds, at most the newest ``limit``, oldest first."""
        db = self._connect() if self.path.exists() else None
        if db is None:
            return []
        query = ("SELECT event, language, kind, model, lines, chars, value FROM events WHERE ts >= ? "
                 "ORDER BY rowid DESC LIMIT ?")
        try:
            return [Event(*row) for row in reversed(db.execute(query, (time.time() - since_s, limit)).fetchall())]
        except sqlite3.Error as exc:
            log.warning("telemetry store unreadable: %s", exc)
            return []

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


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
