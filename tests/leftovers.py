"""What an engine left running, found by session, group and identity, never by command line.

vLLM's ``VLLM::EngineCore`` and ``VLLM::Worker`` rename themselves: their argv carries no path,
no port and no cache directory, and their parent is 1 once the API server died (issue 19, point
9). So a test that looks for leftovers by argv finds nothing and passes while gigabytes stay
behind. This helper is the test's own oracle (it does not use engine/procs.py): it remembers the
engine's processes by (pid, start time) and the sessions and groups they lead, and later lists
every live process in those, born after their leader, plus (optionally) every process whose
environment names the test's runtime directory.

Usage (end-to-end and real-engine tests; ``run_dir`` is ``$VLLM_COMPANION_CACHE/run``)::

    tracked = track(run_dir)                  # once the engine is up: the record's engine (its
                                              # guard) and supervisor, and all their descendants
                                              # (fleet: the router's and every replica's guard)
    ...                                       # engine stop, or the editor's session ends
    wait_gone(tracked, timeout=60)            # AssertionError naming pid, comm, state of leftovers

``track(run_dir, supervisor=False)`` leaves the supervisor out (a language server that lives on
after ``engine stop``); ``env={"VLLM_COMPANION_CACHE": path}`` adds the environment net.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot
    state: str
    comm: str

    def __str__(self) -> str:
        return f"{self.pid} {self.comm!r} state {self.state} pgid {self.pgid} sid {self.sid} parent {self.ppid}"


def processes() -> dict[int, Proc]:
    """Every process now, from /proc/<pid>/stat (proc(5))."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue
        comm, tail = raw[raw.find(b"(") + 1:raw.rfind(b")")], raw[raw.rfind(b")") + 2:].split()
        pid = int(entry.name)
        table[pid] = Proc(pid, int(tail[1]), int(tail[2]), int(tail[3]), int(tail[19]), tail[0].decode(),
                          comm.decode("utf-8", "replace"))
    return table


@dataclass(frozen=True)
class Tracked:
    identities: frozenset[tuple[int, int]]  # (pid, start) of every process seen at track time
    leaders: dict[int, int] = field(default_factory=dict)  # session or group id -> its leader's start
    env: dict[str, str] = field(default_factory=dict)


def track(run_dir: Path, supervisor: bool = True, extra: Iterable[int] = (),
          env: dict[str, str] | None = None) -> Tracked:
    """The engine the registry record in ``run_dir`` names, its supervisor (unless told not to),
    ``extra`` PIDs, and all their descendants as they are now."""
    record = json.loads((run_dir / "engine.json").read_text())
    roles = ("engine", "supervisor") if supervisor else ("engine",)
    roots = {record[r]["pid"] for r in roles if isinstance(record.get(r), dict)} | set(extra)
    table = processes()
    tree = [table[p] for p in roots if p in table]
    while more := [p for p in table.values() if p.ppid in {t.pid for t in tree} and p not in tree]:
        tree += more
    leaders = {p.pid: p.start for p in tree if p.pid in (p.sid, p.pgid)}
    return Tracked(frozenset((p.pid, p.start) for p in tree), leaders, dict(env or {}))


def left(tracked: Tracked) -> list[Proc]:
    """What still runs of ``tracked``: a remembered process, a member of a remembered session or
    group born after its leader, or a process whose environment carries ``tracked.env``."""
    me = os.getpid()
    out = []
    for p in processes().values():
        if p.pid == me or p.state in "ZXx":
            continue
        ours = (p.pid, p.start) in tracked.identities or any(
            g in tracked.leaders and p.start >= tracked.leaders[g] for g in (p.sid, p.pgid))
        if ours or _has_env(p.pid, tracked.env):
            out.append(p)
    return out


def wait_gone(tracked: Tracked, timeout: float) -> None:
    """Wait until nothing of ``tracked`` runs; AssertionError listing what does after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (remaining := left(tracked)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not remaining, "left running: " + "; ".join(map(str, remaining))


def wait_exec(pid: int, comm: str, timeout: float = 10) -> None:
    """Wait until ``pid`` runs ``comm``: a process just started with ``Popen`` may not have
    reached its ``exec`` (nor its ``setsid``) yet."""
    deadline = time.monotonic() + timeout
    while (found := processes().get(pid)) is None or found.comm != comm:
        assert time.monotonic() < deadline, f"{pid} never ran {comm!r}"
        time.sleep(0.01)


def _has_env(pid: int, env: dict[str, str]) -> bool:
    if not env:
        return False
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = set(f.read(1 << 18).split(b"\0"))
    except OSError:
        return False
    return any(f"{k}={v}".encode() in entries for k, v in env.items())
