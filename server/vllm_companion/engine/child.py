"""One engine process as its supervisor (engine/supervisor.py) holds it: started as the leader of
a session and process group of its own, its output to the engine's log file; ended with its whole
group, then whatever its session left behind.

Split from the supervisor (its loop decides *when* to start and stop, this owns *the process*):
ollama's llm/server.go keeps the same ``cmd`` and its ``Close`` apart from its wait loop. Before
every restart and on ``stop``, what is left of the old engine's session is reaped (``signals.reap``:
by session, parentage, identity and the guard's mark in the environment): the guard
(engine/guard.py) does so itself before it exits, and this sweep covers a guard that was killed
first, a worker forked after the guard was last seen and one that left the session. vLLM's
free-memory check would fail a restart beside a leftover ``VLLM::EngineCore`` holding the GPU
(issue 19, point 9).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import BinaryIO

from .. import paths
from .command import EngineCommand
from .procs import Watched
from .signals import reap, signal_child_group

log = logging.getLogger(__name__)


class Child:
    """A started engine process and its session (``Watched``: what the sweep after it and the
    busy check, engine/busy.py, read)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.session = Watched.child(proc.pid)

    @classmethod
    async def spawn(cls, command: EngineCommand, out: BinaryIO) -> Child:
        """``command`` in a new session (so its group and session are ours to end), stdin closed,
        stdout and stderr to ``out``."""
        proc = await asyncio.create_subprocess_exec(
            *command.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            env=paths.child_env(command.env), start_new_session=True,
        )
        return cls(proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait_for(self, timeout_s: float) -> None:
        """Wait until it exits, at most ``timeout_s`` (the supervisor's poll and health interval)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.proc.wait()

    def look(self) -> None:
        """Note the session's members now (signals.reap finds the ones that left it by this)."""
        if self.session is not None:
            self.session.look()

    async def terminate(self, grace_s: float) -> None:
        """End the engine (SIGTERM to its group, SIGKILL after ``grace_s``), then whatever its
        session left behind; the group and the session are ours, whoever leads them by now."""
        proc = self.proc
        if proc.returncode is None:
            self.look()
            signal_child_group(proc.pid, signal.SIGTERM)  # our child, not yet reaped: its PID is its own
            try:
                async with asyncio.timeout(grace_s):
                    await proc.wait()
            except TimeoutError:
                self.look()
                signal_child_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        session = self.session
        if session is not None:
            left = await asyncio.to_thread(reap, session.leader, session.seen, grace_s)
            if left:
                log.error("engine processes still running after SIGKILL: %s", [p.pid for p in left])
