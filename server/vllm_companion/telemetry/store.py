"""Acceptance events in an SQLite file on this machine, never sent anywhere.

Where: ``files.state_dir()``, opened by ``files.open_db`` (no symlinks, ours, 0700/0600). What:
one row per event (shown, accepted, partial, dismissed, survived30, survived120) with the
language, cursor kind, model, the suggestion's size and, for survival and partial accepts, a
number; never the code itself. Bounded: the oldest rows go past ``MAX_ROWS``.

Telemetry never slows or breaks completion (issue 19, point 7: a locked database added its busy
timeout to every completion, one bad row failed every completion):
- the request path only puts events in a bounded queue; one writer thread owns the connection,
  and also runs the survival comparisons and the learner's reads. A full queue, or a database
  another program keeps locked past ``BUSY_S`` (the writer waits that long, never the request
  path), drops the event and counts it (``dropped``);
- any other store error (unsafe folder, unreadable file, full disk, a file holding more than our
  table, a statement past ``files.STEP_S``) turns the store off: ``failure`` says why, logged
  once; the tracker tells the user once;
- rows are validated when read (events.py's ``valid``): a row someone else wrote is skipped,
  never raised. What a row is, and the summaries of them, are events.py's; this module owns the
  writer thread, its queue and its connection.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .events import SCHEMA, Event, read_events
from .files import STEP_S, bound, open_db, state_dir

log = logging.getLogger(__name__)
MAX_ROWS = 100_000
QUEUE_MAX = 1024  # events waiting for the writer; more are dropped
# The writer's SQLite busy timeout: another server (a second editor window) holds the write lock
# for milliseconds, but on a loaded machine it can be descheduled while holding it: with 0.1 s,
# 8 servers writing at once on 2 busy cores dropped 58 of 8,000 events, with 2 s none. The writer
# is off the request path; while it waits, events queue (QUEUE_MAX) and past that are dropped.
BUSY_S = 2.0
CLOSE_S = 1.0  # at shutdown, how long the writer may take to store what is queued
__all__ = ["EventStore", "state_dir"]

Job = Event | Callable[[], Event] | int | None  # an event, one the writer computes, a read of N, stop


class EventStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_dir() / "telemetry.sqlite3"
        self.failure: str | None = None  # why the store is off (set once, by either thread)
        self.recent: list[Event] = []  # the newest events, read by the writer (``refresh``)
        self._full = 0  # events dropped because the queue was full (the caller's thread)
        self._busy = 0  # events dropped because the database was busy (the writer's thread)
        self._queue: queue.Queue[Job] = queue.Queue(QUEUE_MAX)
        self._writer: threading.Thread | None = None
        self._schema: sqlite3.Connection | None = None  # the connection WAL and the table were set on
        self._closed = False

    @property
    def dropped(self) -> int:
        return self._full + self._busy

    def add(self, event: Event | Callable[[], Event]) -> None:
        """Queue an event (or a function the writer calls for it); never waits."""
        self._submit(event)

    def refresh(self, limit: int) -> None:
        """Have the writer read the newest ``limit`` events into ``recent``; never waits."""
        self._submit(limit)

    def _submit(self, job: Job) -> None:
        if self.failure is not None or self._closed:
            return
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
            self._writer.start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._full += 1
            self._told_drops()

    def _run(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            while (job := self._queue.get()) is not None:
                try:
                    db = self._job(db, job)
                except Exception as exc:  # whatever the store does, completion goes on
                    self._fail(exc)  # before task_done: whoever flushes sees the failure
                    return
                finally:
                    self._queue.task_done()
        finally:
            if db is not None:
                db.close()
            if self.dropped:
                log.info("telemetry: %d events dropped in all (database busy or queue full)", self.dropped)

    def _job(self, db: sqlite3.Connection | None, job: Event | Callable[[], Event] | int) -> sqlite3.Connection | None:
        """One job, each statement bounded (``files.bound``); a write lost to a busy database is
        counted; any other error closes the connection and goes up."""
        db = db or open_db(self.path, create=not isinstance(job, int), busy_s=BUSY_S, schema=SCHEMA)
        if db is None:
            return None
        bound(db)
        try:
            self._do(db, job)
        except sqlite3.OperationalError as exc:
            if (code := exc.sqlite_errorcode & 0xFF) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                db.close()
                if code == sqlite3.SQLITE_INTERRUPT:  # files.bound: the file holds more than it should
                    raise TimeoutError(f"a statement ran past {STEP_S:g} s") from exc
                raise
            if not isinstance(job, int):  # a write lost to another program's lock
                self._busy += 1
                self._told_drops()
        except BaseException:
            db.close()
            raise
        return db

    def _do(self, db: sqlite3.Connection, job: Event | Callable[[], Event] | int) -> None:
        if self._schema is not db:
            db.execute("PRAGMA journal_mode=WAL")  # several servers may write at once
            db.execute(SCHEMA)
            self._schema = db
        if isinstance(job, int):
            self.recent = read_events(db, time.time() - 30 * 86400, job)
            return
        event = job if isinstance(job, Event) else job()  # a survival comparison: here, off the loop
        row = (time.time(), event.event, event.language, event.kind, event.model, event.lines, event.chars,
               event.value)
        with db:
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            db.execute("DELETE FROM events WHERE rowid <= (SELECT MAX(rowid) FROM events) - ?", (MAX_ROWS,))

    def _told_drops(self) -> None:
        """Log the count at 1, 2, 4, 8... drops: visible, and bounded however long it lasts."""
        if (n := self.dropped) & (n - 1) == 0:
            log.warning("telemetry: %d events dropped so far (database busy or queue full)", n)

    def _fail(self, exc: BaseException) -> None:
        where = "" if str(self.path.parent) in str(exc) else f" ({self.path})"
        self.failure = f"vLLM Companion: acceptance telemetry is off: {exc}{where}"
        log.warning("%s", self.failure)

    def flush(self, timeout: float = CLOSE_S) -> bool:
        """Wait (at most ``timeout``) until the writer has handled what is queued."""
        end = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks and self.failure is None:
                if (left := end - time.monotonic()) <= 0:
                    return False
                self._queue.all_tasks_done.wait(min(left, 0.05))
        return True

    def events(self, since_s: float = 30 * 86400, limit: int = MAX_ROWS) -> list[Event]:
        """The valid events of the last ``since_s`` seconds, at most the newest ``limit``, oldest
        first (``stats``, doctor, tests: a reader in the caller's thread, after what is queued)."""
        if self._writer is not None:
            self.flush()
        try:
            db = open_db(self.path, create=False, busy_s=BUSY_S, schema=SCHEMA)
        except Exception as exc:  # a report must still print
            log.warning("telemetry store %s unreadable: %s", self.path, exc)
            return []
        if db is None:
            return []
        try:
            bound(db)
            return read_events(db, time.time() - since_s, limit)
        except sqlite3.Error as exc:
            log.warning("telemetry store %s unreadable: %s", self.path, exc)
            return []
        finally:
            db.close()

    def close(self) -> None:
        """Store what is queued (at most ``CLOSE_S``), then stop the writer."""
        self._closed = True
        if self._writer is not None and self._writer.is_alive():
            try:
                self._queue.put(None, timeout=CLOSE_S)
            except queue.Full:
                return
            self._writer.join(CLOSE_S)
