"""Signalling the sessions we own: found by session, parentage and identity, never by a PID alone.

The unit we own is the guard's *session* (and group), not one PID: vLLM's ``VLLM::EngineCore``
and ``VLLM::Worker`` outlive a SIGKILLed API server with parent 1 and an argv without any path
(issue 19, point 9), so they are found by session, parentage and identity (``members``) and by
the guard's mark in their environment (``marked``), never by command line, and each is signalled
through a pidfd opened before its identity is re-checked (``send``). Every signal we send to a
process we did not just spawn goes through ``signal_group``, which re-reads the identity
(engine/procs.py) and checks that the PID is a guard (``is_guard``: a record edited to name the
user's shell has a true identity too) leading its own process group (our engines and guards are
started with ``start_new_session``), and does nothing otherwise. What a guard SIGKILLed with its
supervisor left is found the same way by whoever reads its record next (``sweep``).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Iterable
from typing import Any

from .procs import PROC, ProcessId, boot_id, is_guard, stat_fields, ticks_now

MAX_SCAN = 1 << 17  # /proc entries read per scan: above pid_max's usual 32768 and 4194304 / 32
KILL_WAIT_S = 5.0  # after SIGKILL, how long a process may take to go (it may be in an uninterruptible wait)
REAP_POLL_S = 0.2  # one scan reads every /proc/<pid>/stat: ~0.4 ms a process on a busy 2-core machine
ENV_BYTES = 1 << 18  # of /proc/<pid>/environ read (the mark is its first entry)


def signal_group(raw: Any, sig: signal.Signals) -> bool:
    """Signal the process group led by the recorded guard, only if it is provably that process
    and a guard (``is_guard``).

    Returns whether a signal was sent. A reused PID, a process that no longer leads its group,
    a process that is not a guard (the record edited to name the user's shell), or a malformed
    record gets nothing. Members of its session that left the group, and its descendants
    wherever they went, get the signal too (``members``): the session is the unit we own."""
    ident = raw if isinstance(raw, ProcessId) else ProcessId.from_json(raw)
    seen = ticks_now()
    if ident is None or not is_guard(ident) or not ident.leads_group():
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


def members(leader: ProcessId, seen_alive: int | None = None, outside_group: bool = False,
            roots: Iterable[ProcessId] = ()) -> list[ProcessId]:
    """The live processes of the session and group ``leader`` leads (not the leader itself) that
    are provably ours, whatever their parent or command line, and every descendant of them (and of
    ``roots``, processes already proven ours), wherever it went (``setsid``).

    ``seen_alive``: a tick at which ``leader`` was still alive (None: it is alive now, e.g. it is
    the caller). While a session's leader or any member lives, the kernel does not hand its
    number out again; it can only be reused after the session emptied, so a foreign session under
    the same number has only processes born after ``seen_alive``, and only those born between the
    leader's start and ``seen_alive`` are taken as ours. A live process under the leader's PID with
    another start time means the number was reused: nothing there is ours. A child of a process
    of ours born after it is ours too (a worker forked after the leader was last seen, a process
    that left the session): its parent's identity is proven in the same scan.
    """
    if leader.boot != boot_id() or leader.pid <= 1:
        return []
    now = ticks_now()
    current = ProcessId.of(leader.pid)
    by_session = current == leader or (current is None and seen_alive is not None)
    latest = now if seen_alive is None else seen_alive
    table = _processes()
    found = {pid: int(f[19]) for pid, f in table.items() if by_session and pid != leader.pid
             and str(leader.pid) in (f[2], f[3]) and leader.start <= int(f[19]) <= latest}
    found.update((r.pid, r.start) for r in roots if r.pid in table and int(table[r.pid][19]) == r.start)
    _descend(table, found, {leader.pid: leader.start} if current == leader else {})
    return [ProcessId(pid, start, leader.boot) for pid, start in sorted(found.items())
            if pid != leader.pid and not (outside_group and table[pid][2] == str(leader.pid))]


def _descend(table: dict[int, list[str]], found: dict[int, int], also: dict[int, int]) -> None:
    """Add to ``found`` (pid -> start) every descendant of it and of ``also``: a process whose
    parent is one of them and who was born after that parent (so the parent's number was not
    reused in between)."""
    children: dict[int, list[int]] = {}
    for pid, fields in table.items():
        children.setdefault(int(fields[1]), []).append(pid)
    todo = [*found.items(), *also.items()]
    while todo:
        parent, born = todo.pop()
        for pid in children.get(parent, ()):
            start = int(table[pid][19])
            if pid not in found and pid not in also and start >= born:
                found[pid] = start
                todo.append((pid, start))


def _processes() -> dict[int, list[str]]:
    """Every live process's stat fields, zombies left out (bounded: ``MAX_SCAN`` entries)."""
    out = {}
    with os.scandir(PROC) as entries:
        for count, entry in enumerate(entries):
            if count >= MAX_SCAN:
                break
            fields = stat_fields(int(entry.name)) if entry.name.isdigit() else None
            if fields is not None and fields[0] not in "ZXx":  # a zombie holds nothing but its number
                out[int(entry.name)] = fields
    return out


def marked(leader: ProcessId) -> list[ProcessId]:
    """Every process whose environment carries ``leader``'s mark (``GUARD_ENV``: the guard puts
    it in its engine's environment, and every descendant inherits it, whatever its session,
    parent or name). Found even after the guard is gone and its session's number reused: the
    mark names boot, PID and start time, which never repeat. Reads each environment (bounded);
    off the event loop only."""
    if leader.boot != boot_id() or leader.pid <= 1:
        return []
    mark = b"\0" + leader.mark().encode() + b"\0"
    found = []
    for pid, fields in _processes().items():
        if pid != leader.pid and int(fields[19]) >= leader.start and mark in _environ(pid):
            found.append(ProcessId(pid, int(fields[19]), leader.boot))
    return found


def _environ(pid: int) -> bytes:
    try:
        with open(PROC / str(pid) / "environ", "rb") as f:
            return b"\0" + f.read(ENV_BYTES)
    except OSError:  # another user's process: EACCES
        return b""

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
    """End what is left of ``leader``'s session, its descendants (``members``) and whatever
    carries its mark (``marked``): SIGTERM, SIGKILL after ``grace_s``. A process proven ours once
    stays ours while it lives (its identity never repeats), whatever it does after. Returns what
    still runs afterwards (empty when all is gone). Blocking: call it off the loop."""
    ours, signalled = set(marked(leader)), set[ProcessId]()
    deadline, sig = time.monotonic() + grace_s, signal.SIGTERM
    while left := members(leader, seen_alive, roots=ours):
        ours.update(left)
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


def sweep(raw: Any, grace_s: float) -> list[ProcessId]:
    """End what a recorded guard that is gone left running (``reap``): one SIGKILLed with no
    supervisor left to sweep after it (``kill -9`` of the editor's language server and the guard
    together). Its only sighting is its birth, so its processes are found by its mark and as
    descendants of those. A live process under the identity is left alone: a live guard ends its
    own session (``signal_group``), anything else is not ours. Blocking: call it off the loop."""
    ident = raw if isinstance(raw, ProcessId) else ProcessId.from_json(raw)
    if ident is None or ident.boot != boot_id() or ProcessId.of(ident.pid) == ident:
        return []
    return reap(ident, ident.start, grace_s)
