"""At most N chat answers stream at once, so inline completion stays fast on a shared engine.

One limiter for the server's life: its capacity follows ``chat.maxConcurrent`` while streams run
(a settings change used to build a new semaphore, and three streams ran with a cap of one).
Leaving never waits, so a cancelled holder always frees its place.
"""

from __future__ import annotations

import asyncio


class Limiter:
    def __init__(self, capacity: int) -> None:
        self.capacity, self.active = capacity, 0
        self._waiters: list[asyncio.Future[None]] = []

    async def __aenter__(self) -> None:
        while self.active >= self.capacity:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
