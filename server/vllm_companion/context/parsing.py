"""tree-sitter parses in worker processes, with a budget: a pathological file costs a quarter of a
second of another process, not the server.

tree-sitter's GLR parser has inputs where parse time explodes: a 24 KB TypeScript file of
``a<b>(c)<`` repeated froze every request of the server for 11.7 s (issue 19; about 4x per
doubling). py-tree-sitter 0.26's ``progress_callback`` cancels a parse between steps, and that
is enough for that file; but one step of error recovery can itself run for seconds without a
check, the GIL held, allocating gigabytes: 16 KB of TypeScript ``a<b,`` held the GIL 1.2 s in
one step (64 KB: 7.1 s, 4.3 GB), 32 KB of C ``(a)-(b)`` took 8.5 s and 3.5 GB and crashed the
process (SIGSEGV) when memory ran short. No in-process bound holds against that, so parses run
in worker processes (syntax.py), which answer with plain data (signatures, import records), and:

- each parse has a time budget (``BUDGET_S``), checked by the worker between steps; a worker not
  done ``GRACE_S`` after it is killed (SIGKILL, reaped): a step that never yields costs that much
  wall time of a thread that is not the event loop's, and no GIL;
- the worker's address space is capped (syntax.MEMORY_BYTES); it ends when the server does
  (its stdin closes);
- a byte cap per language (``MAX_BYTES``: TypeScript's ambiguous generics are where the blow-up
  was measured);
- a file is parsed by one worker at a time (``key``: a second request for it is skipped, not
  queued), at most ``MAX_PARSES`` at once, all files together; a caller waits at most the budget
  for a slot;
- a file that ran out of budget, or killed or crashed its worker, is left alone for
  ``BACKOFF_S``: a file being typed in is not parsed again on every keystroke.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .. import paths

log = logging.getLogger(__name__)
BUDGET_S, GRACE_S, START_S = 0.25, 0.5, 10.0
MAX_BYTES = {"typescript": 64_000, "tsx": 64_000, "javascript": 128_000}
DEFAULT_MAX_BYTES = 256_000  # privacy.MAX_FILE_BYTES: no file read is larger
GRAMMARS = frozenset({"python", "javascript", "typescript", "tsx", "c", "cpp"})
MAX_PARSES, BACKOFF_S, REMEMBERED = 2, 30.0, 256
MAX_REPLY = 8 << 20
WORKER = Path(__file__).with_name("syntax.py")

_slots = threading.BoundedSemaphore(MAX_PARSES)
_lock = threading.Lock()
_running: set[str] = set()  # files being parsed now
_slow: OrderedDict[str, float] = OrderedDict()  # file -> when it may be parsed again (monotonic)
_idle: list[Worker] = []  # workers waiting for a parse, at most MAX_PARSES
_warming = False  # a worker is being started by warm()


def parse(grammar: str, source: bytes, kind: str = "definitions", key: str = "", budget_s: float = BUDGET_S) -> Any:
    """What ``kind`` asks of ``source`` (syntax.extract: ``definitions``, a dict of name to
    signature; ``imports``, a list of records), or None: an unknown grammar, over the language's
    byte cap, the file (``key``) already being parsed or backing off, no slot within the budget,
    the budget spent, or the worker killed or dead."""
    if grammar not in GRAMMARS or len(source) > MAX_BYTES.get(grammar, DEFAULT_MAX_BYTES) or not _claim(key):
        return None
    try:
        if not _slots.acquire(timeout=budget_s):
            return None
        try:
            answer, why = _ask({"grammar": grammar, "kind": kind, "size": len(source), "budget": budget_s}, source)
        finally:
            _slots.release()
        if why:
            log.info("parse of %s (%s, %d bytes) %s: skipped for %.0f s",
                     key or "a document", grammar, len(source), why, BACKOFF_S)
            _back_off(key)
        return answer
    finally:
        _release(key)


def _ask(request: dict[str, Any], source: bytes) -> tuple[Any, str]:
    """The worker's answer to one request, and why there is none ("" when there is one)."""
    try:
        worker = _take()
    except OSError as exc:
        return None, f"found no parse worker ({exc})"
    reply = worker.ask(request, source, time.monotonic() + request["budget"] + GRACE_S)
    if reply is None:
        worker.kill()
        return None, "killed or crashed its parse worker"
    with _lock:
        _idle.append(worker)
    return (reply["result"], "") if reply.get("ok") else (None, f"over its {request['budget'] * 1000:.0f} ms budget")


def _take() -> Worker:
    """An idle worker of the pool (module state: the processes are the server's, one set, closed
    at exit), else a new one, which joins the pool when its parse is done. Raises OSError when
    none starts."""
    with _lock:
        if _idle:
            return _idle.pop()
    return Worker()


class Worker:
    """One ``syntax.py`` process: requests on its stdin, one JSON line of answer on its stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-I", str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0, close_fds=True,
                                     env=paths.child_env({}))  # hostile files: never the user's keys
        if self._line(time.monotonic() + START_S) != b"ready\n":
            self.kill()
            raise OSError("the parse worker did not start")

    def ask(self, request: dict[str, Any], source: bytes, deadline: float) -> dict[str, Any] | None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(request).encode() + b"\n" + source)
            line = self._line(deadline)
            reply = json.loads(line) if line is not None else None
        except (OSError, ValueError):
            return None
        return reply if isinstance(reply, dict) else None

    def _line(self, deadline: float) -> bytes | None:
        """One line from the worker by ``deadline``, at most ``MAX_REPLY`` bytes; None otherwise."""
        assert self.proc.stdout is not None
        fd, out = self.proc.stdout.fileno(), b""
        while not out.endswith(b"\n") and len(out) <= MAX_REPLY:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0] or not (chunk := os.read(fd, 1 << 20)):
                return None
            out += chunk
        return out if out.endswith(b"\n") else None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def close(self) -> None:
        """Ask the worker to end (its stdin closes), then make sure it did."""
        try:
            self.proc.communicate(timeout=1)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.kill()


def warm() -> None:
    """Start a worker in the background, so the first parse does not pay for its start (about
    60 ms, more on a busy machine: the first completion's context deadline is 100 ms)."""
    global _warming
    with _lock:
        if _idle or _warming:
            return
        _warming = True
    threading.Thread(target=_start_idle, name="parse-worker", daemon=True).start()


def _start_idle() -> None:
    global _warming
    try:
        worker: Worker | None = Worker()
    except OSError as exc:
        log.warning("no parse worker: %s", exc)
        worker = None
    with _lock:
        _warming = False
        if worker is not None:
            _idle.append(worker)


@atexit.register
def _close_idle() -> None:
    with _lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.close()


def _claim(key: str) -> bool:
    if not key:
        return True
    with _lock:
        until = _slow.get(key)
        if key in _running or (until is not None and time.monotonic() < until):
            return False
        _slow.pop(key, None)
        _running.add(key)
        return True


def _release(key: str) -> None:
    with _lock:
        _running.discard(key)


def _back_off(key: str) -> None:
    if not key:
        return
    with _lock:
        _slow[key] = time.monotonic() + BACKOFF_S
        _slow.move_to_end(key)
        while len(_slow) > REMEMBERED:
            _slow.popitem(last=False)
