"""The model side of next-edit suggestions: render the family's prompt, stream the answer, parse it.

One request, one stream, through THE stream loop (streaming/drive.py) with a stage pipeline: the
family's end markers (``StopSequences``: engines honour ``stop``, but not all do for special
tokens rendered as text) and the loop guard (streaming/loops.py), so a rewrite that starts
repeating itself is cut and the HTTP stream closed at once. String prompts go to
``/v1/completions``, message prompts to ``/v1/chat/completions``; parameters come from
sampling.py (``nextedit_params``); the request ranks between inline completion and chat (vLLM
priority 1) and, like a completion, makes a chat on this server step aside while it runs
(turns.py). The whole call is bounded by ``cap_s``; past it the answer is None (no edit). The
answer is bounded in characters too (``parse.MAX_ANSWER_CHARS``, ``_bounded``): the stages read
the whole text on each chunk, and a hostile engine's megabyte chunks held the event loop about a
second each (completions included) before the cap could fire. A region holding marker text is
never sent (markers.leaks: the prompt could not frame it, and the model's copy of it would end
at the user's own end marker; tests/adversarial/test_next_edit_model.py).

``ServedPredictor`` is what the server wires (app.py): per request, the model the endpoint serves
now (``Health``: launch and attach mode alike, a reconnect included) and its family from
``nextEdit.family`` or the model's name (formats.detect_family), then one ``ModelPredictor``;
whether the model is asked at all is ``nextEdit.model`` and what serves (asking.py). Where the
launched plan runs a next-edit model in a second process (engine/paired.py; ``Health``'s
``next_edit_backend`` while it is ready), that process answers, in the family its name says
(Sweep's); where the endpoint lists a trained next-edit model beside the served one (a team's
front over such a plan, engine/front_route.py; ``Health.listed_next_edit``, backend/served.py),
that model answers on the same endpoint, in its family; otherwise the served model, in the
detected family or the generic prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace
from typing import Any, Protocol

from ..backend.client import Chunk, ModelInfo
from ..backend.connection import Connection
from ..sampling import nextedit_params
from ..streaming import Pipeline
from ..streaming.drive import Drive
from ..streaming.loops import is_loop, loop_detectors
from ..streaming.stop_sequences import StopSequences
from ..turns import Turns
from .asking import TRAINED, Engine, decide
from .formats import NextEditFormat, Prompt, detect_family
from .markers import leaks
from .parse import MAX_ANSWER_CHARS, parse_answer
from .types import NextEditInput

log = logging.getLogger(__name__)
BACKSTOP_S = 30.0  # ServedPredictor's own cap; the service's nextEdit.timeoutMs (<= 30 s) comes first


def trained_next_edit(model_id: str) -> bool:
    """Is ``model_id`` a trained next-edit model's name (Sweep, Zeta, Zeta 2, Instinct:
    formats.detect_family)? The discovery (backend/served.py) never serves one for completion
    while another model is listed, and keeps it apart for next edits (app.py passes this in)."""
    return detect_family(model_id).name in TRAINED


class Streams(Protocol):
    """The narrow slice of backend.Backend used here (the backend package is being restructured)."""

    def stream_completion(self, prompt: str, **params: Any) -> AsyncGenerator[Chunk, None]: ...

    def stream_chat(self, messages: list[dict[str, str]], **params: Any) -> AsyncGenerator[Chunk, None]: ...


class ModelPredictor:
    """``predict`` -> the region's new text, or None (no edit, unusable answer, cap reached)."""

    def __init__(
        self,
        backend: Streams,
        model: str,
        family: NextEditFormat,
        turns: Turns,
        priority: bool,
        cap_s: float,
        on_loop: Callable[[str], object] | None = None,
    ) -> None:
        self.backend, self.model, self.family, self.turns = backend, model, family, turns
        self.priority, self.cap_s, self.on_loop = priority, cap_s, on_loop
        self.last: Drive | None = None  # the latest request's stream (timing, cut reason) for the benchmark

    async def predict(self, inp: NextEditInput) -> str | None:
        region = inp.region
        if leaks(region.text):
            log.debug("next-edit: the region holds marker text; the model is not asked")
            return None
        prompt = self.family.render(inp)
        familiar = "\n".join((region.before, region.text, region.after))  # a rewrite repeats the region
        drive = Drive(Pipeline([StopSequences(self.family.stop), *loop_detectors(familiar)]))
        self.last = drive
        try:
            async with asyncio.timeout(self.cap_s):
                with self.turns.completing():
                    text = await drive.run(_bounded(self._stream(prompt), MAX_ANSWER_CHARS))
        except TimeoutError:
            log.debug("next-edit: %s passed its cap of %.1f s", self.family.name, self.cap_s)
            return None
        if is_loop(drive.cut_reason) and self.on_loop is not None:
            self.on_loop(self.model)
        finished = drive.cut_reason == "stop" or (drive.cut_reason is None and drive.finish_reason == "stop")
        new = parse_answer(self.family.name, text, finished)
        return None if new is None or new == region.text else new

    def _stream(self, prompt: Prompt) -> AsyncGenerator[Chunk, None]:
        fmt = self.family
        seed_text = prompt if isinstance(prompt, str) else "".join(m["content"] for m in prompt)
        params = nextedit_params(fmt.max_tokens, fmt.temperature, fmt.stop, self.model, self.priority, seed_text)
        if isinstance(prompt, str):
            return self.backend.stream_completion(prompt, **params)
        return self.backend.stream_chat(prompt, **params)


async def _bounded(stream: AsyncGenerator[Chunk, None], limit: int) -> AsyncGenerator[Chunk, None]:
    """``stream`` up to ``limit`` characters: past it, the text is cut there and the answer ends
    unfinished ("length"), and ``stream`` is closed (the engine stops generating)."""
    left = limit
    async with contextlib.aclosing(stream):
        async for chunk in stream:
            if len(chunk.text) > left:
                yield Chunk(chunk.text[: left + 1], "length")  # one past the limit: parse refuses it
                return
            left -= len(chunk.text)
            yield chunk


class Own(Streams, Protocol):
    """A backend with its connection: the launched next-edit process's (backend.client.Backend)."""

    @property
    def connection(self) -> Connection: ...


class Served(Protocol):
    """The slice of backend.health.Health used here: the connection in use and its served model,
    and the launched next-edit process's backend when one is ready."""

    @property
    def backend(self) -> Streams: ...

    @property
    def connection(self) -> Connection: ...

    async def model(self) -> ModelInfo: ...

    def next_edit_backend(self) -> Own | None: ...

    def listed_next_edit(self) -> str | None: ...


class ServedPredictor:
    """The server's predictor: the served model, the family its name or ``nextEdit.family`` names."""

    def __init__(self, served: Served, family_setting: Callable[[], str], turns: Turns, cap_s: float,
                 on_loop: Callable[[str], object] | None, model_setting: Callable[[], str], engine: Engine,
                 max_tokens: Callable[[], int]) -> None:
        self.served, self.family_setting, self.turns = served, family_setting, turns
        self.cap_s, self.on_loop = cap_s, on_loop
        self.model_setting, self.engine = model_setting, engine  # nextEdit.model, and the binding (asking.py)
        self.max_tokens = max_tokens  # nextEdit.maxTokens: at most the family's own limit

    def family(self, model_id: str) -> NextEditFormat:
        return detect_family(model_id, self.family_setting())

    async def predict(self, inp: NextEditInput) -> str | None:
        """Raises the backend's errors (the service turns them into no edit); the service's own
        cap (``nextEdit.timeoutMs``) is the real bound, ``cap_s`` the backstop."""
        if self.model_setting() == "off":  # before the model listing: nothing reaches the endpoint
            return None
        backend, model_id, family, priority = await self._target()
        decision = decide(self.model_setting(), family.name, self.engine.launch, self.engine.device)
        if not decision.ask:
            log.debug("next-edit: model not asked: %s", decision.why)
            return None
        family = replace(family, max_tokens=max(1, min(family.max_tokens, self.max_tokens())))
        predictor = ModelPredictor(backend, model_id, family, self.turns, priority, self.cap_s, self.on_loop)
        return await predictor.predict(inp)

    async def _target(self) -> tuple[Streams, str, NextEditFormat, bool]:
        """Who answers: the launched next-edit process in its own family (its name says it:
        ``nextEdit.family`` is for the served model), else a trained next-edit model the endpoint
        lists beside the served one (learned with it), likewise, else the served model."""
        own = self.served.next_edit_backend()
        if own is not None and own.connection.model:
            return own, own.connection.model, detect_family(own.connection.model), own.connection.priority
        model = await self.served.model()
        if (listed := self.served.listed_next_edit()) is not None:
            return self.served.backend, listed, detect_family(listed), self.served.connection.priority
        return self.served.backend, model.id, self.family(model.id), self.served.connection.priority
