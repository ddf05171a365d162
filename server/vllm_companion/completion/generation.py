"""One streamed generation, shared by every request that can use it.

A generation runs as its own task; LSP requests subscribe to it. When the last subscriber leaves
(superseded, ``$/cancelRequest``, timed out) the task is cancelled, which closes the HTTP stream
so the engine stops generating. A newer request whose prefix extends this one's (the user typed
what was being generated) subscribes instead of starting over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..backend import Backend
from ..streaming import Pipeline
from ..streaming.drive import Drive
from ..turns import Turns

log = logging.getLogger(__name__)


class Generation:
    def __init__(
        self,
        backend: Backend,
        prompt: str,
        params: dict[str, Any],
        pipeline: Pipeline,
        finish: Callable[[str], str],
        prefix: str,
        suffix: str,
        request_id: str,
        on_loop: Callable[[], None] | None,
        turns: Turns,
    ) -> None:
        self.turns = turns  # the server's one (app.py): completion ahead of chat
        self.backend = backend  # the route it streams on, kept if the route changes (service.py)
        self.prefix, self.suffix, self.request_id = prefix, suffix, request_id
        self.pipeline = pipeline
        self.drive = Drive(pipeline, on_loop=on_loop)
        self.refs = 0
        self._finish = finish
        self.task: asyncio.Task[str] = asyncio.create_task(self._run(backend, prompt, params))
        self.task.add_done_callback(_consume)

    @property
    def text(self) -> str:
        return self.pipeline.text

    @property
    def result(self) -> str:
        """The finished generation's text (only once ``task`` is done)."""
        return self.task.result()

    @property
    def cut_reason(self) -> str | None:
        return self.drive.cut_reason

    @property
    def chunks(self) -> int:
        return self.drive.chunks

    @property
    def first_token_s(self) -> float | None:
        return self.drive.first_token_s

    async def _run(self, backend: Backend, prompt: str, params: dict[str, Any]) -> str:
        with self.turns.completing():  # a chat on this server steps aside meanwhile (turns.py)
            text = await self.drive.run(backend.stream_completion(prompt, **params), close=True)
        if self.cut_reason:
            log.debug("[%s] cut: %s", self.request_id, self.cut_reason)
        return self._finish(text)

    def acquire(self) -> Generation:
        self.refs += 1
        return self

    def release(self) -> None:
        self.refs -= 1
        if self.refs <= 0 and not self.task.done():
            self.task.cancel()

    def partial(self) -> str:
        """Text so far, cut back to the last complete line (for the wall-clock cap)."""
        text = self.pipeline.text
        return self._finish(text[: text.rfind("\n")]) if "\n" in text else ""


def _consume(task: asyncio.Task[str]) -> None:
    """Mark a failed generation's exception as retrieved (its subscribers handle it)."""
    if not task.cancelled():
        task.exception()
