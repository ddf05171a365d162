"""One engine start's output, as its supervisor reads it (engine/supervisor.py).

The output goes to a private file per port, not a pipe to us: the engine outlives the language
server that started it while other editors use it (engine/manager.py). The supervisor reads what
was added since its last look, at most ``READ_BYTES`` a read and whole lines only, keeps the last
``TAIL_LINES`` for the diagnosis (engine/planning/diagnose.py) and the user, and reads each new
line as progress while the engine starts (model loads take minutes; a stall timer resets on
progress, as in ollama's llm/server.go), our own probes excepted.
"""

from __future__ import annotations

import os
import re
from collections import deque
from pathlib import Path
from typing import BinaryIO

from ..paths import private_dir

READ_BYTES = 1 << 20
TAIL_LINES = 200
PROGRESS_CHARS = 160  # of the last line, for the status
_PERCENT = re.compile(r"(\d{1,3})%")
_OUR_PROBES = re.compile(r'"GET /(health|v1/models) HTTP')


class EngineLog:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.path: Path | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def create(self, port: int) -> BinaryIO:
        """A fresh log for the engine on ``port`` (0600, no link followed), for its output."""
        private_dir(self.log_dir)
        self.path = self.log_dir / f"engine-{port}.log"
        self.tail.clear()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        return os.fdopen(fd, "wb")

    def size(self) -> int:
        return self.path.stat().st_size if self.path and self.path.exists() else 0

    def read(self, offset: int) -> tuple[int, list[str]]:
        """The whole lines after ``offset`` (kept in ``tail`` too) and the offset after them."""
        if self.path is None:
            return offset, []
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read(READ_BYTES)
        except OSError:
            return offset, []
        cut = data.rfind(b"\n") + 1
        lines = data[:cut].decode("utf-8", "replace").splitlines()
        self.tail.extend(lines)
        return offset + cut, lines


def progress(lines: list[str]) -> tuple[str, int | None] | None:
    """What new lines say of a start: the last one and the newest percentage; None when they are
    only our own probes' access lines (our polling is not progress)."""
    lines = [x for x in lines if not _OUR_PROBES.search(x)]
    if not lines:
        return None
    last = next((x for x in reversed(lines) if x.strip()), "")
    matches = [m for m in map(_PERCENT.search, reversed(lines)) if m]  # newest line with a percentage
    return last.strip()[-PROGRESS_CHARS:], min(100, int(matches[0].group(1))) if matches else None
