"""Completion ahead of chat on one engine: a chat answer steps aside while a completion runs.

vLLM's priority scheduling orders the *waiting* queue, but its v1 scheduler preempts a running
request only when the KV cache runs out (vllm/v1/core/sched/scheduler.py, ``allocate_slots``),
and a waiting request never displaces a running one when ``--max-num-seqs`` is reached. So a
completion that arrives while a chat streams is batched with it (measured on the CPU engine:
p50 +44 %), or, at ``--max-num-seqs 1``, waits for the whole answer (cap reached). Inside one
language server we can do better: the chat stream closes while a completion runs (the engine
drops it at its next step) and continues when completions have been quiet for ``QUIET_S``, as a
continuation of the partial answer (vLLM's ``continue_final_message``; the prompt and the text so
far are prefix-cached, so resuming costs little). Starvation bound: after waiting ``MAX_WAIT_S``
the chat resumes and does not step aside again for ``MIN_RUN_S``. Other users' chats on a shared
engine are vLLM's business (priorities in its queue). Measured in docs/performance.md
(scripts/bench_chat_priority.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

QUIET_S = 0.3  # completions quiet this long: a typing pause, the chat may continue
MAX_WAIT_S = 10.0  # a chat never waits longer than this at a time (the user types on)
MIN_RUN_S = 1.0  # after a forced resume, the chat runs at least this long


class Turns:
    """Who holds the engine now; one per server (app.py), read by the chat service."""

    def __init__(self) -> None:
        self._running = 0
        self._last_end = 0.0
        self._changed = asyncio.Event()
        self._busy = asyncio.Event()  # set while a completion runs
        self._no_yield_until = 0.0

    @contextlib.contextmanager
    def completing(self) -> Iterator[None]:
        """Around one completion's engine call."""
        self._running += 1
        self._busy.set()
        self._changed.set()
        try:
            yield
        finally:
            self._running -= 1
            self._last_end = time.monotonic()
            if self._running == 0:
                self._busy.clear()
            self._changed.set()

    @property
    def busy(self) -> bool:
        """A completion (or a next-edit prediction) holds the engine now."""
        return self._running > 0

    async def completion_runs(self) -> None:
        """Returns as soon as a completion runs: a warm-up's cue to leave (completion/warm.py)."""
        await self._busy.wait()

    def chat_should_yield(self) -> bool:
        return self._running > 0 and time.monotonic() >= self._no_yield_until

    async def completion_began(self) -> None:
        """Returns when the chat should step aside (a completion runs, outside ``MIN_RUN_S``)."""
        while not self.chat_should_yield():
            await self._busy.wait()
            if (hold := self._no_yield_until - time.monotonic()) > 0:
                await asyncio.sleep(hold)

    async def wait_for_chat_turn(self) -> None:
        """Until completions are quiet (or ``MAX_WAIT_S``, after which the chat runs ``MIN_RUN_S``)."""
        deadline = time.monotonic() + MAX_WAIT_S
        while (now := time.monotonic()) < deadline:
            quiet_for = now - self._last_end
            if self._running == 0 and quiet_for >= QUIET_S:
                return
            self._changed.clear()
            wait = QUIET_S - quiet_for if self._running == 0 else deadline - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.01, min(wait, deadline - now)))
        self._no_yield_until = time.monotonic() + MIN_RUN_S
