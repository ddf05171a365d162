"""When the model is asked for a next edit (nextEdit.model, nextedit/asking.py), end to end: over
real stdio against a fake engine on a real socket, "off" sends no model request (and offers
nothing where propagation has nothing), "on" does and the edit comes back; the server's own
predictor (ServedPredictor over the real backend client) asks a launched GPU engine and does not
ask a launched CPU engine with the generic prompt, unless told "on"."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.fake_backend import FakeBackend
from tests.lsp_session import options
from tests.nextedit_replay import replaying
from tests.nextedit_typing import edits_after_typing, scale_doc
from vllm_companion.backend.client import Backend, ModelInfo
from vllm_companion.backend.connection import Connection
from vllm_companion.nextedit.model import ServedPredictor
from vllm_companion.nextedit.types import NextEditInput, RecordedEdit, Region
from vllm_companion.turns import Turns


async def _edits(backend: FakeBackend, model: str) -> list[dict[str, object]]:
    init = {**options(backend.url), "nextEdit": {"model": model, "timeoutMs": 10000}}
    edits, _, _ = await edits_after_typing(backend, init, scale_doc("x"))
    return edits


async def test_off_sends_no_model_request(backend: FakeBackend) -> None:
    assert await _edits(backend, "off") == []
    assert backend.generation_requests() == []


async def test_on_asks_the_model_and_offers_its_edit(backend: FakeBackend) -> None:
    (edit,) = await _edits(backend, "on")
    assert edit["text"] == "rate" and len(backend.generation_requests()) == 1


@dataclass
class Binding:
    """The two facts the decision reads of engine/binding.py's EngineBinding."""

    launch: bool
    device: str | None


class Served:
    """Health's slice (nextedit/model.py ``Served``) over the real backend client."""

    def __init__(self, backend: Backend, model: str) -> None:
        self.backend, self._model = backend, model

    @property
    def connection(self) -> Connection:
        return self.backend.connection

    async def model(self) -> ModelInfo:
        return ModelInfo(self._model, 4096)

    def next_edit_backend(self) -> None:  # no next-edit process beside it (engine/paired.py)
        return None

    def listed_next_edit(self) -> None:  # no next-edit model listed beside it (backend/served.py)
        return None


REGION = Region(uri="file:///w/a.py", path="a.py", language_id="python", start_row=0, end_row=2,
                text="def f(a, b):\n    return a", cursor_row=0, cursor_col=11, before="", after="")
INPUT = NextEditInput(REGION, (RecordedEdit(REGION.uri, "a.py", 0, "def f(a):", "def f(a, b):"),))


@pytest.mark.parametrize(("served", "setting", "device", "asked"), [
    ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "auto", "cuda", True),
    ("smollm2-135m-instruct", "auto", "cpu", False),  # measured useless: ~4.6 s, 0 useful edits in 20
    ("smollm2-135m-instruct", "on", "cpu", True),
    ("sweepai/sweep-next-edit-1.5B", "auto", "cpu", True),  # a trained family is asked anywhere
])
async def test_launched_engine_is_asked_by_device_and_family(backend: FakeBackend, served: str, setting: str,
                                                             device: str, asked: bool) -> None:
    backend.default = replaying(REGION, REGION.text.replace("return a", "return a + b"))
    client = Backend(Connection(backend.url))
    try:
        predictor = ServedPredictor(Served(client, served), lambda: "auto", Turns(), 5.0, None,
                                    lambda: setting, Binding(True, device), lambda: 512)
        await predictor.predict(INPUT)
    finally:
        await client.close()
    assert len(backend.generation_requests()) == (1 if asked else 0)
