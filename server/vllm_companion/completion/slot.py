"""Per-document request slot: a newer request supersedes older ones; debounce waits on it.

Every request takes a ticket. Taking a ticket fires the previous ticket's ``superseded`` event,
so an older request waiting in its debounce or on a generation returns at once (with no
answer) instead of holding the editor and the engine. Latest wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from .generation import Generation

T = TypeVar("T")


class Superseded(Exception):
    pass


class Ticket:
    def __init__(self) -> None:
        self.superseded = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        """Debounce: wait ``seconds`` unless superseded first (then raise ``Superseded``)."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self.superseded.wait(), seconds)
        except TimeoutError:
            return
        raise Superseded

    async def wait(self, work: Awaitable[T], limit_s: float) -> T:
        """Await ``work`` unless superseded or ``limit_s`` passes (``TimeoutError``)."""
        job = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.superseded.wait())
        try:
            done, _ = await asyncio.wait({job, stop}, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if job in done:
            return job.result()
        if stop in done:
            raise Superseded
        raise TimeoutError


class Slot:
    def __init__(self) -> None:
        self.ticket: Ticket | None = None
        self.generation: Generation | None = None

    def take(self) -> Ticket:
        if self.ticket is not None:
            self.ticket.superseded.set()
        self.ticket = Ticket()
        return self.ticket
