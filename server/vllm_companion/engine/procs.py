"""Processes we may signal: identified by more than a PID, signalled only when proven ours.

A PID alone names a process only while it lives: after it exits (or after a reboot, since our
records live under ``~/.cache`` when there is no ``XDG_RUNTIME_DIR``) the number is reused by
some unrelated program, and ``os.killpg`` on a stale record would stop that program's whole
group. A ``ProcessId`` therefore carries the kernel's boot id and the process's start time in
clock ticks since boot (``/proc/<pid>/stat`` field 22, proc(5)): the triple (boot, pid, start)
never repeats. Every signal we send to a process we did not just spawn goes through
``signal_group``, which re-reads the triple and checks that the PID leads its own process group
(our engines and guards are started with ``start_new_session``), and does nothing otherwise.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PROC = Path("/proc")


def boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces and parens)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_bytes()[:4096]
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
        fields = _stat_fields(pid) if isinstance(pid, int) and pid > 0 else None
        if fields is None or fields[0] == "Z":
            return None
        return cls(pid, int(fields[19]), boot_id())

    @classmethod
    def me(cls) -> ProcessId:
        found = cls.of(os.getpid())
        return found if found is not None else cls(os.getpid(), 0, boot_id())

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
        fields = _stat_fields(self.pid)
        return fields is not None and fields[2] == str(self.pid)


def alive(raw: Any) -> bool:
    """For registry values: a recorded identity that still names the same running process."""
    ident = raw if isinstance(raw, ProcessId) else ProcessId.from_json(raw)
    return ident is not None and ident.alive()


def signal_group(raw: Any, sig: signal.Signals) -> bool:
    """Signal the process group led by the recorded process, only if it is provably that process.

    Returns whether a signal was sent. A reused PID, a process that no longer leads its group,
    or a malformed record gets nothing."""
    ident = raw if isinstance(raw, ProcessId) else ProcessId.from_json(raw)
    if ident is None or not ident.alive() or not ident.leads_group():
        return False
    try:
        os.killpg(ident.pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_child_group(pid: int, sig: signal.Signals) -> None:
    """Signal the group of a child we spawned and have not reaped (its PID cannot be reused)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
