"""The front's body checks off its event loop (engine/front.py): a large body is parsed in a
process of its own, which dies with the front."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .front_limits import INLINE, Checked, Limits

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Checker:
    """Bodies through ``Limits.apply``: a small one on the event loop, a large one in a process of
    its own. Not a thread: json.loads holds the GIL, so a thread stopped the loop for the whole
    parse (measured: 3 MiB of 900-deep lists took 0.8 s a body, and a member's GET waited 2.3 s
    behind three; tests/adversarial/test_team.py). A pool broken by a worker's death (the OOM
    killer) fails its requests (503) and is replaced for the next ones."""

    def __init__(self, limits: Limits, workers: int) -> None:
        self.limits, self.workers = limits, workers
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: a fork would copy the front's threads and open sockets into the worker
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_die_with, initargs=(os.getpid(),))

    async def apply(self, path: str, body: bytes) -> Checked:
        if len(body) <= INLINE:
            return self.limits.apply(path, body)
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, self.limits.apply, path, body)
        except BrokenProcessPool:
            if pool is self._pool:
                self._pool = self._new_pool()
                pool.shutdown(wait=False)
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _die_with(parent: int) -> None:
    """A checker's first step: be SIGKILLed when the front goes. uvicorn ends the front on SIGTERM by
    raising the signal again once it has stopped, so no clean-up of ours runs, and a SIGKILL runs
    none either: without this the checkers outlived the front (tests/adversarial/test_team.py)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the front went before the prctl
        os._exit(0)
