"""Per-document request slot: a newer request supersedes older ones; debounce waits on it.

Every request subscribes to its document's slot (``Slot.subscribe``, a context manager). Taking
the slot fires the previous ticket's ``superseded`` event, so an older request waiting in its
debounce or on a generation returns at once (with no answer) instead of holding the editor and
the engine. Latest wins. The subscription holds the slot's running generation (which a request
may reuse) and lets it go when the request ends: the last holder leaving cancels the generation
and closes the engine stream. ``Slot.close`` (on ``didClose``) ends the document's generation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from typing import TypeVar

from .cache import typed_since
from .generation import Generation
from .window import Window

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
            done, _ = await asyncio.wait({job, stop}, timeout=max(0.0, limit_s), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if job in done:
            return job.result()
        if stop in done:
            raise Superseded
        raise TimeoutError


class Subscription:
    """One request's hold on its slot: the ticket, and the generation it may use."""

    def __init__(self, slot: Slot, ticket: Ticket) -> None:
        self.slot, self.ticket = slot, ticket
        self.held: Generation | None = slot.generation.acquire() if slot.generation else None

    def reusable(self, window: Window) -> tuple[Generation | None, str]:
        """The held generation if the new cursor just extends its prefix with what it is
        generating, and the text typed since (served from the cache once it is done)."""
        gen = self.held
        if gen is None or gen.task.done():
            return None, ""
        typed = typed_since(gen.prefix, gen.suffix, window.prefix, window.suffix)
        if typed is None:
            return None, ""
        so_far = gen.text
        if so_far.startswith(typed) or (typed.startswith(so_far) and not gen.pipeline.cut):
            return gen, typed
        return None, ""

    def use(self, gen: Generation) -> Generation:
        """Start using ``gen`` (a new generation, which becomes the slot's)."""
        self.drop()
        self.slot.generation = self.held = gen.acquire()
        return gen

    def drop(self) -> None:
        if self.held is not None:
            self.held.release()
            self.held = None


class Slot:
    def __init__(self) -> None:
        self.ticket: Ticket | None = None
        self.generation: Generation | None = None

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        if self.ticket is not None:
            self.ticket.superseded.set()
        self.ticket = Ticket()
        sub = Subscription(self, self.ticket)
        try:
            yield sub
        finally:
            sub.drop()

    def close(self) -> None:
        """The document closed: supersede its request and end its generation."""
        if self.ticket is not None:
            self.ticket.superseded.set()
        if self.generation is not None and not self.generation.task.done():
            self.generation.task.cancel()
        self.generation = None
