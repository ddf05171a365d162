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
from typing import Any, TypeVar

from .cache import typed_since
from .generation import Generation
from .window import Window

T = TypeVar("T")


class Superseded(Exception):
    pass


class Ticket:
    """One request's turn on its slot. ``superseded`` is a plain future, not an ``Event``: waiting
    on it with the work needs no task of its own (an ``Event.wait`` task was started and
    cancelled for every completion: a request's subscribe and wait took 24.7 us, now 19.2 us;
    issue 21's overhead measure, docs/performance.md)."""

    def __init__(self) -> None:
        self.superseded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def supersede(self) -> None:
        if not self.superseded.done():
            self.superseded.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Debounce: wait ``seconds`` unless superseded first (then raise ``Superseded``)."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.superseded), seconds)
        except TimeoutError:
            return
        raise Superseded

    async def wait(self, work: Awaitable[T], limit_s: float) -> T:
        """Await ``work`` unless superseded or ``limit_s`` passes (``TimeoutError``)."""
        job = asyncio.ensure_future(work)
        either: set[asyncio.Future[Any]] = {job, self.superseded}
        done, _ = await asyncio.wait(either, timeout=max(0.0, limit_s), return_when=asyncio.FIRST_COMPLETED)
        if job in done:
            return job.result()
        if self.superseded in done:
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
            self.ticket.supersede()
        self.ticket = Ticket()
        sub = Subscription(self, self.ticket)
        try:
            yield sub
        finally:
            sub.drop()

    def close(self) -> None:
        """The document closed: supersede its request and end its generation."""
        if self.ticket is not None:
            self.ticket.supersede()
        if self.generation is not None and not self.generation.task.done():
            self.generation.task.cancel()
        self.generation = None
