"""One engine for all editor windows: a state file (with an flock) in the user's runtime dir.

Several language servers (VS Code windows, Neovim beside them) must not each start an engine on
an 8 GB card. The record says which engine runs, which server supervises it and which servers
use it. A new server attaches to a live engine; the last one out stops it unless
``engine.keepAlive``; a server whose supervisor died adopts the engine.

Nothing in the record is trusted (docs/security.md): processes are recorded as identities
(``procs.ProcessId``: boot, pid, start time), never bare PIDs; a record whose endpoint is not on
loopback is discarded; a "starting" record whose supervisor is gone or silent for
``STARTING_EXPIRE_S`` expires. The directory is 0700 and must belong to the user; files are 0600,
since the record carries the engine's API key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .procs import ProcessId, alive

STARTING_EXPIRE_S = 60.0  # a starting supervisor beats every few seconds while it lives
MAX_RECORD_BYTES = 1 << 20
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class UnsafeDirectory(Exception):
    """The runtime directory belongs to someone else or others can write to it."""


def private_dir(path: Path) -> Path:
    """Create ``path`` 0700, or check an existing one: ours, and not open to others (fixed if so)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise UnsafeDirectory(f"{path} is not a directory owned by you: refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically (never through a symlink someone planted)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def runtime_dir() -> Path:
    from .models import cache_dir

    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "vllm-companion" if base and "VLLM_COMPANION_CACHE" not in os.environ else cache_dir() / "run"
    return private_dir(path)


def is_loopback(url: Any) -> bool:
    try:
        host = urlparse(url).hostname if isinstance(url, str) else None
    except ValueError:
        return False
    return host in LOOPBACK_HOSTS or bool(host and host.startswith("127."))


def sanitize(record: dict[str, Any], now: float) -> dict[str, Any]:
    """Drop what a record may not say: dead owners, a non-loopback endpoint, an expired start."""
    owners = record.get("owners")
    record["owners"] = [o for o in owners[:64] if alive(o)] if isinstance(owners, list) else []
    if "endpoint" in record and not is_loopback(record["endpoint"]):
        return {"owners": record["owners"]}
    if record.get("state") == "starting":
        beat = record.get("beat")
        fresh = isinstance(beat, int | float) and 0 <= now - beat < STARTING_EXPIRE_S
        if not (fresh and alive(record.get("supervisor"))):
            return {"owners": record["owners"]}
    return record


class EngineRegistry:
    def __init__(self, directory: Path | None = None) -> None:
        self.dir = private_dir(directory) if directory else runtime_dir()
        self.path = self.dir / "engine.json"
        self.lock_path = self.dir / "engine.lock"
        self.me = ProcessId.me()

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The record (sanitized; ``{}`` if none), written back when the block ends."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                record = self.read()
                yield record
                if record.get("engine") or record.get("state") in ("starting", "stopping"):
                    write_private(self.path, json.dumps(record, indent=1))
                elif self.path.exists():
                    self.path.unlink()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read(MAX_RECORD_BYTES))
        except (OSError, ValueError):
            return {}
        return sanitize(data, time.time()) if isinstance(data, dict) else {}

    def add_owner(self, record: dict[str, Any]) -> None:
        mine = self.me.to_json()
        record["owners"] = [o for o in record.get("owners", []) if o != mine] + [mine]

    def drop_owner(self, record: dict[str, Any]) -> None:
        mine = self.me.to_json()
        record["owners"] = [o for o in record.get("owners", []) if o != mine]

    def is_mine(self, value: Any) -> bool:
        return ProcessId.from_json(value) == self.me
