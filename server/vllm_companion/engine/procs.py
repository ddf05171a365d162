"""Processes we may signal: identified by more than a PID, signalled only when proven ours.

A PID alone names a process only while it lives: after it exits (or after a reboot, since our
records live under ``~/.cache`` when there is no ``XDG_RUNTIME_DIR``) the number is reused by
some unrelated program, and ``os.killpg`` on a stale record would stop that program's whole
group. A ``ProcessId`` therefore carries the kernel's boot id and the process's start time in
clock ticks since boot (``/proc/<pid>/stat`` field 22, proc(5)): the triple (boot, pid, start)
never repeats. Every signal we send to a process we did not just spawn goes through
``signal_group``, which re-reads the triple and checks that the PID leads its own process group
(our engines and guards are started with ``start_new_session``), and does nothing otherwise.

The unit we own is the guard's *session* (and group), not one PID: vLLM's ``VLLM::EngineCore``
and ``VLLM::Worker`` outlive a SIGKILLed API server with parent 1 and an argv without any path
(issue 19, point 9), so they are found by session and identity (``members``), never by command
line, and each is signalled through a pidfd opened before its identity is re-checked (``send``).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PROC = Path("/proc")
MAX_SCAN = 1 << 17  # /proc entries read per scan: above pid_max's usual 32768 and 4194304 / 32
KILL_WAIT_S = 5.0  # after SIGKILL, how long a process may take to go (it may be in an uninterruptible wait)
REAP_POLL_S = 0.2  # one scan reads every /proc/<pid>/stat: ~0.4 ms a process on a busy 2-core machine


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
    or a malformed record gets nothing. Members of its session that left the group get the
    signal too (``members``): the session is the unit we own."""
    ident = raw if isinstance(raw, ProcessId) else ProcessId.from_json(raw)
    seen = ticks_now()
    if ident is None or not ident.alive() or not ident.leads_group():
        return False
    try:
        os.killpg(ident.pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    for member in members(ident, seen, outside_group=True):
        send(member, sig)
    return True


def signal_child_group(pid: int, sig: signal.Signals) -> None:
    """Signal the group of a child we spawned and have not reaped (its PID cannot be reused)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def ticks_now() -> int:
    """Now, in the unit of a start time (/proc/<pid>/stat field 22): clock ticks since boot,
    CLOCK_BOOTTIME (proc(5); the kernel takes start times from the same clock)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def members(leader: ProcessId, seen_alive: int | None = None, outside_group: bool = False) -> list[ProcessId]:
    """The live processes of the session and group ``leader`` leads (not the leader itself) that
    are provably ours, whatever their parent or command line.

    ``seen_alive``: a tick at which ``leader`` was still alive (None: it is alive now, e.g. it is
    the caller). While a session's leader or any member lives, the kernel does not hand its
    number out again; it can only be reused after the session emptied, so a foreign session under
    the same number has only processes born after ``seen_alive``, and only those born between the
    leader's start and ``seen_alive`` are taken as ours. A live process under the leader's PID with
    another start time means the number was reused: nothing there is ours.
    """
    if leader.boot != boot_id() or leader.pid <= 1:
        return []
    now = ticks_now()
    current = ProcessId.of(leader.pid)
    if (current is not None and current != leader) or (seen_alive is None and current is None):
        return []  # the number names someone else now, or "alive now" is not true
    latest = now if seen_alive is None else seen_alive
    found = []
    for pid, fields in _processes():
        if pid == leader.pid or fields[0] in "ZXx" or str(leader.pid) not in (fields[2], fields[3]):
            continue  # a zombie holds nothing but its number
        if outside_group and fields[2] == str(leader.pid):
            continue
        if leader.start <= int(fields[19]) <= latest:
            found.append(ProcessId(pid, int(fields[19]), leader.boot))
    return found


def _processes() -> list[tuple[int, list[str]]]:
    """Every process's stat fields (bounded: ``MAX_SCAN`` entries)."""
    out = []
    with os.scandir(_PROC) as entries:
        for count, entry in enumerate(entries):
            if count >= MAX_SCAN:
                break
            fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
            if fields is not None:
                out.append((int(entry.name), fields))
    return out


def send(ident: ProcessId, sig: signal.Signals) -> bool:
    """Signal one process only while it is still ``ident``: the pidfd is opened before the
    identity is re-checked, so the PID cannot be reused between the check and the signal."""
    try:
        fd = os.pidfd_open(ident.pid)
    except OSError as exc:
        if exc.errno != errno.ENOSYS or not ident.alive():  # ENOSYS: a kernel before 5.3
            return False
        return _kill(ident.pid, sig)
    try:
        if not ident.alive():
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _kill(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except OSError:
        return False
    return True


def reap(leader: ProcessId, seen_alive: int | None, grace_s: float) -> list[ProcessId]:
    """End what is left of ``leader``'s session (``members``): SIGTERM, SIGKILL after ``grace_s``.
    Returns what still runs afterwards (empty when all is gone). Blocking: call it off the loop."""
    signalled: set[ProcessId] = set()
    deadline, sig = time.monotonic() + grace_s, signal.SIGTERM
    while left := members(leader, seen_alive):
        for ident in left:
            if ident not in signalled or sig is signal.SIGKILL:
                signalled.add(ident)
                send(ident, sig)
        if time.monotonic() >= deadline:
            if sig is signal.SIGKILL:
                return left
            deadline, sig = time.monotonic() + KILL_WAIT_S, signal.SIGKILL
            continue
        time.sleep(REAP_POLL_S)
    return []


@dataclass
class Watched:
    """A session we started (its leader is our own child) and the last tick it was provably
    ours, for ``reap`` once the leader has gone (killed, or exited without cleaning up)."""

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
