"""Processes as identities: more than a PID, so a record never names a stranger's process.

A PID alone names a process only while it lives: after it exits (or after a reboot, since our
records live under ``~/.cache`` when there is no ``XDG_RUNTIME_DIR``) the number is reused by
some unrelated program, and ``os.killpg`` on a stale record would stop that program's whole
group. A ``ProcessId`` therefore carries the kernel's boot id and the process's start time in
clock ticks since boot (``/proc/<pid>/stat`` field 22, proc(5)): the triple (boot, pid, start)
never repeats. ``is_guard`` says whether an identity names one of our guards, what a record's
processes must be before anything is signalled through them; the signalling itself, by session,
parentage, identity and the guard's mark, is engine/signals.py's.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
GUARD_MODULE = "vllm_companion.engine.guard"  # engine/launch.py starts every guard as ``python -m`` this
GUARD_ENV = "VLLM_COMPANION_GUARD"  # the guard's mark, first in its engine's environment (signals.marked)
CMDLINE_BYTES = 1 << 16


def boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces and parens)."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()[:4096]
    except OSError:
        return None
    tail = raw[raw.rfind(b")") + 2 :].decode("ascii", "replace").split()
    return tail if len(tail) > 20 else None


@dataclass(frozen=True)
class ProcessId:
    pid: int
    start: int  # clock ticks after boot
    boot: str

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The identity of the running process ``pid`` (None if there is none, or a zombie)."""
        fields = stat_fields(pid) if isinstance(pid, int) and pid > 0 else None
        if fields is None or fields[0] == "Z":
            return None
        return cls(pid, int(fields[19]), boot_id())

    @classmethod
    def me(cls) -> ProcessId:
        found = cls.of(os.getpid())
        return found if found is not None else cls(os.getpid(), 0, boot_id())

    def mark(self) -> str:
        """``GUARD_ENV=boot:pid:start``: what the guard ``self`` puts in its engine's environment."""
        return f"{GUARD_ENV}={self.boot}:{self.pid}:{self.start}"

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "start": self.start, "boot": self.boot}

    @classmethod
    def from_json(cls, raw: Any) -> ProcessId | None:
        """A record's identity, validated: anything malformed (or a bare PID) is no identity."""
        if not isinstance(raw, dict):
            return None
        pid, start, boot = raw.get("pid"), raw.get("start"), raw.get("boot")
        if type(pid) is not int or type(start) is not int or not isinstance(boot, str) or pid <= 1:
            return None
        return cls(pid, start, boot)

    def alive(self) -> bool:
        """Is the very process this identity was taken from still running?"""
        return ProcessId.of(self.pid) == self

    def leads_group(self) -> bool:
        fields = stat_fields(self.pid)
        return fields is not None and fields[2] == str(self.pid)


def cpu_ticks(ident: ProcessId) -> int | None:
    """The CPU time ``ident`` has used so far, user and system, every thread of it (proc(5):
    /proc/<pid>/stat fields 14 and 15, in clock ticks); None when the number no longer names that
    process (gone, a zombie, reused, another boot). Start time and CPU come from one read of one
    file: a process that took the number in between is never counted as ``ident`` at work."""
    fields = stat_fields(ident.pid) if ident.boot == boot_id() else None
    if fields is None or fields[0] in "ZXx" or int(fields[19]) != ident.start:
        return None
    return int(fields[11]) + int(fields[12])


def alive(raw: Any) -> bool:
    """For registry values: a recorded identity that still names the same running process."""
    ident = raw if isinstance(raw, ProcessId) else ProcessId.from_json(raw)
    return ident is not None and ident.alive()


def ticks_now() -> int:
    """Now, in the unit of a start time (/proc/<pid>/stat field 22): clock ticks since boot,
    CLOCK_BOOTTIME (proc(5); the kernel takes start times from the same clock)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def is_guard(raw: Any) -> bool:
    """A recorded identity that names a live guard (``python -m GUARD_MODULE``): what a record's
    ``engine`` and ``front`` must be before anything is signalled through them. A record edited to
    name the user's shell, the language server or any other process of the user (each may lead
    its own group and session) names no guard."""
    ident = raw if isinstance(raw, ProcessId) else ProcessId.from_json(raw)
    if ident is None or not ident.alive():
        return False
    try:
        with open(PROC / str(ident.pid) / "cmdline", "rb") as f:
            argv = f.read(CMDLINE_BYTES).split(b"\0")
    except OSError:
        return False
    module = GUARD_MODULE.encode()
    return any(a == b"-m" and b == module for a, b in itertools.pairwise(argv)) and ident.alive()


@dataclass
class Watched:
    """A session we started (its leader is our own child) and the last tick it was provably
    ours, for ``signals.reap`` once the leader has gone (killed, or exited without cleaning up)."""

    leader: ProcessId
    seen: int

    @classmethod
    def child(cls, pid: int) -> Watched | None:
        seen = ticks_now()
        leader = ProcessId.of(pid)
        return cls(leader, seen) if leader is not None else None

    def look(self) -> None:
        seen = ticks_now()  # taken before the check: at this tick the leader was alive
        if self.leader.alive():
            self.seen = seen
