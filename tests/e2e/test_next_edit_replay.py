"""Every next-edit family end to end: its prompt rendered, sent to a fake engine on a real socket
(the right endpoint, parameters and priority), the family's answer streamed back in small
chunks, cut at its end marker (the stream closed), parsed, and turned into the editor's edit by
nextedit/edits.py. Plus the ways an answer must come to nothing: no-edit markers, truncation,
the cap, a loop. Then each family through the real server over stdio (``textDocument/copilotInlineEdit``):
chosen by ``nextEdit.family`` or detected from the served model's name, its answer replayed by
the fake engine, the edit back in Copilot's shape (UTF-16 range, the request's version echoed).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import options
from tests.nextedit_replay import PROMPT_MARK, family_answer, replay, replaying
from tests.nextedit_typing import edits_after_typing, scale_doc
from vllm_companion.backend.client import Backend
from vllm_companion.backend.connection import Connection
from vllm_companion.nextedit.edits import suggestions
from vllm_companion.nextedit.formats import BY_NAME
from vllm_companion.nextedit.model import ModelPredictor
from vllm_companion.nextedit.types import NextEditInput, RecordedEdit, Region
from vllm_companion.turns import Turns

REGION = Region(
    uri="file:///w/shop.py", path="shop.py", language_id="python", start_row=1, end_row=5,
    text="def total(items, rate):\n    s = 0\n    for it in items:\n        s += price(it) * tax",
    cursor_row=1, cursor_col=22, before="import math", after="    return s",
)
LAST = RecordedEdit(REGION.uri, "shop.py", 1, "def total(items, tax):", "def total(items, rate):")
INPUT = NextEditInput(REGION, (LAST,))
NEW = REGION.text.replace("* tax", "* rate")


async def _predict(backend: FakeBackend, family: str, cap_s: float = 5.0) -> tuple[ModelPredictor, str | None]:
    client = Backend(Connection(backend.url))
    try:
        predictor = ModelPredictor(client, "served-model", BY_NAME[family], Turns(), priority=True, cap_s=cap_s)
        return predictor, await predictor.predict(INPUT)
    finally:
        await client.close()


@pytest.mark.parametrize("family", list(BY_NAME))
async def test_family_answer_becomes_the_next_edit(backend: FakeBackend, family: str) -> None:
    backend.default = replaying(REGION, NEW)
    _, new = await _predict(backend, family)
    assert new == NEW
    [edit] = suggestions(REGION, new, LAST, family)
    assert (edit.start_row, edit.end_row, edit.text, edit.source) == (4, 4, "rate", family)
    seen = backend.generation_requests()[-1]
    assert seen.path.endswith("chat/completions" if BY_NAME[family].chat else "/completions")
    assert seen.body["temperature"] == 0.0 and seen.body["priority"] == 1 and seen.body["model"] == "served-model"
    assert seen.body.get("stop", []) == list(BY_NAME[family].stop)


@pytest.mark.parametrize("family", list(BY_NAME))
async def test_no_edit_answer_is_none(backend: FakeBackend, family: str) -> None:
    backend.default = replaying(REGION, None)
    assert (await _predict(backend, family))[1] is None


@pytest.mark.parametrize("family", ["sweep", "zeta", "zeta2", "instinct"])
async def test_stream_stops_at_the_end_marker(backend: FakeBackend, family: str) -> None:
    """An engine that ignores ``stop`` and runs on: we cut at the marker and hang up."""
    backend.default = lambda body: replay(family, REGION, NEW, loop="garbage ", delay_s=0.001)
    assert (await _predict(backend, family))[1] == NEW
    await asyncio.sleep(0.1)  # the fake engine notices the hang-up at its next write
    seen = backend.generation_requests()[-1]
    assert seen.client_closed and seen.chunks_sent < 200


@pytest.mark.parametrize("family", list(BY_NAME))
async def test_truncated_answer_is_none(backend: FakeBackend, family: str) -> None:
    answer = family_answer(family, REGION, NEW)
    backend.default = lambda body: Reply(chunks=[answer[: len(answer) // 2]], finish_reason="length")
    assert (await _predict(backend, family))[1] is None


async def test_cap_reached_is_none_and_the_stream_closed(backend: FakeBackend) -> None:
    backend.default = lambda body: Reply(chunks=["def total("], loop="x", delay_s=0.05)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert (await _predict(backend, "sweep", cap_s=0.3))[1] is None
    assert loop.time() - t0 < 2
    await asyncio.sleep(0.1)
    assert backend.generation_requests()[-1].client_closed


async def test_a_looping_rewrite_is_cut_by_the_loop_guard(backend: FakeBackend) -> None:
    backend.default = lambda body: Reply(chunks=["def total(items, rate):\n"], loop="    s += price(it) * rate\n")
    predictor, new = await _predict(backend, "sweep")
    assert new is None
    assert predictor.last is not None and (predictor.last.cut_reason or "").startswith("loop:")
    await asyncio.sleep(0.1)
    assert backend.generation_requests()[-1].client_closed


# Over stdio: the next edit uses the new parameter right of an astral character (two UTF-16 units).
DOC = scale_doc("😀")


async def _offer(backend: FakeBackend, init: dict[str, object]) -> tuple[dict[str, object], int, str]:
    edits, version, uri = await edits_after_typing(backend, init, DOC)
    (edit,) = edits
    return edit, version, uri


COL = len('    t = "😀" * '.encode("utf-16-le")) // 2  # 15 code points, 16 UTF-16 units


@pytest.mark.parametrize("family", list(BY_NAME))
async def test_family_setting_drives_the_edit_over_stdio(backend: FakeBackend, family: str) -> None:
    init = {**options(backend.url), "nextEdit": {"family": family, "timeoutMs": 10000}}
    edit, version, uri = await _offer(backend, init)
    assert edit["text"] == "rate" and edit["textDocument"] == {"uri": uri, "version": version}
    assert edit["range"] == {"start": {"line": 1, "character": COL}, "end": {"line": 1, "character": COL + 1}}
    seen = backend.generation_requests()[-1]
    prompt = seen.body.get("prompt") or "".join(m["content"] for m in seen.body["messages"])
    assert PROMPT_MARK[family] in prompt and seen.body.get("stop", []) == list(BY_NAME[family].stop)
    assert seen.path.endswith("chat/completions" if BY_NAME[family].chat else "/completions")


@pytest.mark.parametrize(("served", "family"), [("sweepai/sweep-next-edit-1.5B", "sweep"),
                                                ("zed-industries/zeta", "zeta"), ("continuedev/instinct", "instinct")])
async def test_family_detected_from_the_served_model(backend: FakeBackend, served: str, family: str) -> None:
    backend.model = served
    edit, _, _ = await _offer(backend, {**options(backend.url), "nextEdit": {"timeoutMs": 10000}})
    assert edit["text"] == "rate"
    seen = backend.generation_requests()[-1]
    assert seen.body["model"] == served and seen.path.endswith("chat/completions" if family == "instinct" else
                                                                "/v1/completions")
    prompt = seen.body.get("prompt") or "".join(m["content"] for m in seen.body["messages"])
    assert PROMPT_MARK[family] in prompt


async def test_the_max_tokens_setting_bounds_the_request(backend: FakeBackend) -> None:
    """``nextEdit.maxTokens`` (documented, in the Settings UI) reached no request before: the
    family's own limit (512 or 1,024) was always sent (review finding)."""
    init = {**options(backend.url), "nextEdit": {"family": "generic", "timeoutMs": 10000, "maxTokens": 96}}
    edit, _, _ = await _offer(backend, init)
    assert edit["text"] == "rate"
    assert backend.generation_requests()[-1].body["max_tokens"] == 96
