"""One engine stream through a stage pipeline: the loop that completion and chat share.

Reads chunks, feeds the pipeline, reports new text, records finish reasons and timing; the first
stage to cut ends the loop, and leaving the ``aclosing`` block closes the HTTP stream, so the
engine stops generating at once (no GPU burnt on text we drop). A loop cut is counted against the
model (repetition.py), wherever the stream came from.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from .loops import is_loop
from .pipeline import Pipeline


class ChunkLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def finish_reason(self) -> str | None: ...


class Drive:
    def __init__(
        self,
        pipeline: Pipeline,
        on_text: Callable[[str], None] | None = None,
        on_loop: Callable[[], None] | None = None,
    ) -> None:
        self.pipeline, self.on_text, self.on_loop = pipeline, on_text, on_loop
        self.started = time.perf_counter()
        self.first_token_s: float | None = None
        self.chunks = 0  # stream events with text (usually one token each; not a token count)
        self.finish_reason: str | None = None
        self._sent = 0

    @property
    def cut_reason(self) -> str | None:
        return self.pipeline.cut.reason if self.pipeline.cut else None

    async def run(self, stream: AsyncGenerator[ChunkLike, None], close: bool = False) -> str:
        """The pipeline's text once the stream ends or a stage cuts (``close``: treat an
        unterminated last line as complete, as a finished completion must)."""
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                if self.first_token_s is None:
                    self.first_token_s = time.perf_counter() - self.started
                self.chunks += bool(chunk.text)
                self.finish_reason = chunk.finish_reason or self.finish_reason
                cut = self.pipeline.feed(chunk.text)
                self._report()
                if cut is not None:
                    break
        if close:
            self.pipeline.close()
        if self.on_loop is not None and is_loop(self.cut_reason):
            self.on_loop()
        return self.pipeline.text

    def _report(self) -> None:
        text = self.pipeline.text
        if self.on_text is not None and len(text) > self._sent:
            self.on_text(text[self._sent :])
        self._sent = len(text)
