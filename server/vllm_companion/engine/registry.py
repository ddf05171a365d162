"""One engine for all editor windows: a state file (with an flock) in the user's runtime dir.

Several language servers (VS Code windows, Neovim beside them) must not each start an engine on
an 8 GB card. The record says which engine runs (pid, endpoint, model), which server supervises
it and which servers use it. A new server attaches to a live engine; the last one out stops it
unless ``engine.keepAlive``; a server whose supervisor died adopts the engine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def runtime_dir() -> Path:
    from .models import cache_dir

    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "vllm-companion" if base and "VLLM_COMPANION_CACHE" not in os.environ else cache_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EngineRegistry:
    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or runtime_dir()
        self.path = self.dir / "engine.json"
        self.lock_path = self.dir / "engine.lock"

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The record (``{}`` if none; dead owners pruned), written back when the block ends."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                record = self.read()
                record["owners"] = [p for p in record.get("owners", []) if alive(p)]
                yield record
                if record.get("pid") or record.get("state") == "starting":
                    self._write(record)
                elif self.path.exists():
                    self.path.unlink()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, record: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(self.path)
