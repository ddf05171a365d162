"""Is an engine that leaves its health checks unanswered at work, or stuck?

llama.cpp's Python server (the CPU plan's engine without AVX-512, engine/planning/cpu.py) serves
one request at a time and answers nothing else meanwhile, its model list (its health,
engine/readiness.py) included: a cold prompt of thousands of tokens takes 5-30 s on 2 cores, and
a warm-up on didOpen (completion/warm.py) with the completion queued behind it longer. Three
failed checks had the supervisor kill it mid-request; the requests after it met ConnectError. So
each failed check is weighed by the CPU time the engine's session spent since the one before:
/proc/<pid>/stat utime + stime, which count every thread of a process (proc(5)), summed over the
guard, the engine and its workers (``signals.members``), each read by identity
(``procs.cpu_ticks``: a reused PID is never counted as ours at work).

- At work (``BUSY_SHARE`` of one core or more since the last check): not a failure, and the count
  of idle checks starts again.
- Idle: a failure; ``Policy.health_failures`` idle checks in a row (3, 5 s apart) is a hung
  engine, restarted as before. The first failed check of a run has nothing to compare with and
  counts as idle, so a hung engine is replaced as soon as it was before.
- Unanswered for ``Policy.busy_limit_s`` (600 s) is a stall even at work: a deadlocked engine may
  spin a core (CUDA synchronisation and NCCL collectives wait by spinning) and must still be
  replaced. 600 s is ten times the longest request the language server makes
  (``backend.totalTimeoutS``, 60 s): room for a queue of cold prompts on a slow machine.
- An engine that exits is the supervisor's at once, as before: it waits on the process itself.

``BUSY_SHARE`` is 5 % of one core. Measured here (2-core AMD EPYC, load 3-4): the guard and
llama.cpp's server idle spend 0.2-0.4 % (1-6 ticks in 5-15 s); reading a prompt, llama.cpp
spends up to 200 % (2 threads), and a process at work on 2 cores shared by ten busy processes
still gets about 20 %. The same machine, SmolLM2 on llama.cpp, default policy: a 3,161-token
cold prompt was killed after 21 s before this (RemoteProtocolError) and is answered in 26.9 s now.
"""

from __future__ import annotations

import asyncio
import os
import time

from .procs import ProcessId, Watched, cpu_ticks, ticks_now
from .signals import members
from .supervised import Policy

BUSY_SHARE = 0.05  # of one core, between two failed checks: at work (module doc)
CLK_TCK = os.sysconf("SC_CLK_TCK")
Sample = dict[ProcessId, int]  # CPU ticks of each live process of the session


def session_cpu(session: Watched) -> Sample:
    """CPU ticks used so far by every live process of the engine's session: its leader (the guard,
    or the engine itself) and every member and descendant proven ours. Scans /proc: off the loop."""
    sample = {}
    for ident in (session.leader, *members(session.leader, session.seen)):
        ticks = cpu_ticks(ident)
        if ticks is not None:
            sample[ident] = ticks
    return sample


def worked(before: Sample, after: Sample, since: int) -> int:
    """Ticks spent between two samples: by each process in both, and in full by one born after
    ``since`` (the tick the first sample began: a worker started meanwhile). A process seen only
    in the second sample but born before the first is left out: its time is not known to be new."""
    return sum(ticks - before.get(ident, 0) for ident, ticks in after.items()
               if ident in before or ident.start >= since)


class Silence:
    """One run of unanswered health checks of one engine (the supervisor starts one at the first
    failed check and drops it at the next answer): when it began, how many checks in a row found
    the engine idle, and the last CPU sample to weigh the next check against."""

    def __init__(self, session: Watched | None, policy: Policy) -> None:
        self.session, self.policy = session, policy
        self.began = time.monotonic()
        self.idle = 0
        self._sample: Sample | None = None
        self._at, self._tick = self.began, 0

    async def failed(self) -> str | None:
        """One more check unanswered. None: keep waiting; ``"unhealthy"``: idle for
        ``health_failures`` checks in a row; ``"silent"``: unanswered for ``busy_limit_s``."""
        tick, now = ticks_now(), time.monotonic()
        sample = await asyncio.to_thread(session_cpu, self.session) if self.session is not None else {}
        enough = BUSY_SHARE * (now - self._at) * CLK_TCK
        busy = self._sample is not None and worked(self._sample, sample, self._tick) >= enough
        self._sample, self._at, self._tick = sample, now, tick
        self.idle = 0 if busy else self.idle + 1
        if self.idle >= self.policy.health_failures:
            return "unhealthy"
        if now - self.began >= self.policy.busy_limit_s:
            return "silent"
        return None
