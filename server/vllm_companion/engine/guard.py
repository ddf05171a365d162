"""The engine's own watchdog: it stops the engine when no editor that uses it is alive.

The supervisor lives inside a language server. An editor that dies by SIGKILL (the OOM killer),
or a server that never gets to run its clean-up, would leave a multi-gigabyte engine holding the
GPU forever, owned by nobody. So the engine is not started directly: this small process starts
it as its child, in the same process group (the group the supervisor signals), and every
``INTERVAL_S`` reads the registry record. The engine is stopped when, twice in a row:

- no recorded owner (a language server or ``engine start`` service) is alive, by identity
  (``procs.ProcessId``, so a reused PID keeps nothing alive), and ``keepAlive`` is off; or
- the record is gone, names another engine, or asks for a stop (``vllm-companion engine stop``).

A fleet (engine/fleet.py) records its router as the engine; its replicas run under guards started
with ``--member``, which skip the "names another engine" check and follow the rest.

The guard leads the engine's session and group (the supervisor starts it with
``start_new_session``) and is the last of them to go: whenever its engine exits (a SIGKILL from the
OOM killer included) or is stopped, it ends every other process of its session, and every
descendant wherever it went, by session, parentage and identity (``signals.reap``), and only then
exits. vLLM's ``VLLM::EngineCore`` and ``VLLM::Worker``
survive their API server (issue 19, point 9: one held 2.6 GB with parent 1; on a GPU it would hold
the memory the restart needs). As a child subreaper (prctl(2) ``PR_SET_CHILD_SUBREAPER``) it
inherits such orphans and reaps them, so nothing it started ends up under init while it lives.
Its engine's environment starts with the guard's mark (``procs.GUARD_ENV``: boot, PID, start
time), which every descendant inherits: if the guard itself is SIGKILLed, whoever finds its
record next (the supervisor's sweep, ``engine stop``, the next start) finds what it left by that
mark (``signals.sweep``), even a process that left the session and lost its parent.

Measured: a language server killed with SIGKILL leaves its engine for 2-5 s (tests/e2e).
Usage: ``python -m vllm_companion.engine.guard RECORD [--member] -- ENGINE_ARGV...``
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from .. import paths
from .procs import GUARD_ENV, ProcessId, alive
from .record import EMPTY, EngineRecord, cleared_if
from .registry import EngineRegistry
from .signals import reap

INTERVAL_S = paths.seconds("VLLM_COMPANION_GUARD_INTERVAL_S", 1.5)
STOPPED_ON_PURPOSE = 86  # exit status: the guard stopped the engine; the supervisor must not restart it
MISSES = 2
GRACE_S = paths.seconds("VLLM_COMPANION_GUARD_GRACE_S", 10.0)  # SIGTERM, then SIGKILL
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def orphaned(record: EngineRecord, me: ProcessId, member: bool = False) -> str | None:
    """Why the engine should stop now, or None while someone needs it (``record`` as the registry
    reads it: bounded, parsed, empty when gone)."""
    if record == EMPTY:
        return "the registry record is gone"
    if record.stop_requested:
        return "a stop was requested"
    engine = record.engine
    if engine is not None and engine != me and not member:
        return "the registry names another engine"
    if record.keep_alive and (engine == me or member):
        return None
    if any(alive(o) for o in record.owners):
        return None
    return "no editor using the engine is alive"


def _lead() -> None:
    """Lead a session of our own (the supervisor starts us so; by hand we make one) and adopt
    orphaned descendants, so the engine's whole tree stays ours to find and to reap."""
    if os.getsid(0) != os.getpid():
        with contextlib.suppress(OSError):
            os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _end(child: subprocess.Popen[bytes]) -> int:
    """Stop the engine and everything of its session (SIGTERM, SIGKILL after ``GRACE_S``), reap
    what we inherited, and return the engine's exit status. Nothing of ours outlives the guard."""
    left = reap(ProcessId.me(), None, GRACE_S)
    if left:
        print(f"vllm-companion guard: still running after SIGKILL: {[p.pid for p in left]}", flush=True)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(1.0)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:  # orphans that came to us (the engine itself is reaped)
            pass
    return child.returncode if child.returncode is not None else 1


def main(argv: list[str]) -> int:
    member = len(argv) > 1 and argv[1] == "--member"
    argv = [argv[0], *argv[2:]] if member else argv
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m vllm_companion.engine.guard RECORD [--member] -- ENGINE_ARGV...", file=sys.stderr)
        return 2
    record_path, command = Path(argv[0]), argv[2:]
    registry = EngineRegistry(record_path.parent)
    _lead()
    me = ProcessId.me()
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)  # before the engine starts: a stop never finds us unprepared
    env = paths.child_env({GUARD_ENV: me.mark().partition("=")[2]})
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env)  # same session and group, same log file
    misses = 0
    while not stopping and child.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(INTERVAL_S)  # an engine that dies is noticed at once
        reason = orphaned(registry.read(), me, member) if child.returncode is None else None
        misses = misses + 1 if reason else 0
        if misses >= MISSES:
            print(f"vllm-companion guard: stopping the engine: {reason}", flush=True)
            _end(child)
            _forget(registry, me)
            return STOPPED_ON_PURPOSE
    return _end(child)


def _forget(registry: EngineRegistry, me: ProcessId) -> None:
    """Clear the record if it still names this engine (nobody else will: its users are gone)."""
    try:
        registry.change(lambda record: cleared_if(record, record.engine == me))
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
