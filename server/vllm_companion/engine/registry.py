"""One engine for all editor windows: a state file (with an flock) in the user's runtime dir.

Several language servers (VS Code windows, Neovim beside them) must not each start an engine on
an 8 GB card. The record says which engine runs, which server supervises it and which servers
use it. A new server attaches to a live engine; the last one out stops it unless
``engine.keepAlive``; a server whose supervisor died adopts the engine.

Nothing in the record is trusted (docs/security.md): processes are recorded as identities
(``procs.ProcessId``: boot, pid, start time), never bare PIDs; a record whose endpoint is not on
loopback is discarded; a "starting" record whose supervisor is gone or silent for
``STARTING_EXPIRE_S`` expires. The record's type, its parser and every change to it are in
engine/record.py; this module is its one writer (``change``). The directory is 0700 and must
belong to the user; files are 0600, since the record carries the engine's API key.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from .. import paths
from ..paths import private_dir, read_private, write_private
from .procs import ProcessId
from .record import EMPTY, Change, Decided, EngineRecord, T, joined, parse, to_json

MAX_RECORD_BYTES = 1 << 20


def runtime_dir() -> Path:
    """The runtime folder (``paths.runtime_dir``), made private to the user."""
    return private_dir(paths.runtime_dir())


class EngineRegistry:
    def __init__(self, directory: Path | None = None) -> None:
        self.dir = private_dir(directory) if directory else runtime_dir()
        self.path = self.dir / "engine.json"
        self.lock_path = self.dir / "engine.lock"
        self.me = ProcessId.me()

    def change(self, step: Callable[[EngineRecord], EngineRecord]) -> tuple[EngineRecord, EngineRecord]:
        """Apply ``step`` (one of engine/record.py's changes) under the lock (``decide``); returns
        the record before and after."""
        done = self.decide(lambda record: Decided(step(record), None))
        return done.before, done.after

    def decide(self, step: Callable[[EngineRecord], Decided[T]]) -> Change[T]:
        """Apply ``step`` to the record under the lock and write the result (or remove the file
        when nothing is left to keep): the one writer of the record. Returns the record before and
        after and what the step decided (``record.entered``: attach or start; ``record.departed``:
        stop or leave), made on the record it changed."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                before = self.read()
                decided = step(before)
                if decided.record.kept:
                    write_private(self.path, json.dumps(to_json(decided.record), indent=1))
                elif self.path.exists():
                    self.path.unlink()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return Change(before, decided.record, decided.decision)

    def own(self, owner: ProcessId) -> None:
        """Write a record naming ``owner`` alone, for a private folder's guard (engine/calibrate.py:
        the doctor's engine stops once the doctor is gone). Written whole though it carries no
        engine yet, which ``decide`` would remove as nothing to keep."""
        write_private(self.path, json.dumps(to_json(joined(EMPTY, owner))))

    def read(self) -> EngineRecord:
        """The record, bounded (``MAX_RECORD_BYTES``), read by ``read_private`` (a FIFO, a link or
        another user's file there is no record) and parsed (``record.parse``); empty if none."""
        raw = read_private(self.path, MAX_RECORD_BYTES)
        try:
            data = json.loads(raw) if raw is not None else None
        except (ValueError, RecursionError):
            return EMPTY
        return parse(data, time.time())
