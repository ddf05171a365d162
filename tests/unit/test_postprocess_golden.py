"""Post-processing goldens: a document with a cursor, what the model streams, what the editor gets.

Cases live in tests/data/golden/postprocess/cases.json so they read like the editor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.lsp_session import split_cursor
from vllm_companion.completion.postprocess import finisher, stages_for
from vllm_companion.completion.window import build_window
from vllm_companion.documents import UTF16, Document
from vllm_companion.prompts import PLAIN, resolve_family
from vllm_companion.tokens import Budget

CASES = json.loads((Path(__file__).parent.parent / "data/golden/postprocess/cases.json").read_text())


def run_case(case: dict[str, Any]) -> tuple[str, str | None]:
    text, pos = split_cursor(case["doc"])
    doc = Document.from_text("file:///t.py", "python", 1, text)
    row, col = doc.to_index(pos, UTF16)
    window = build_window(doc, row, col, Budget(2000))
    family = resolve_family(None, case["family"]) if "family" in case else PLAIN
    pipeline = stages_for(family, window, case.get("max_lines", 16))
    for chunk in case["chunks"]:
        if pipeline.feed(chunk):
            break
    pipeline.close()
    return finisher(window)(pipeline.text), pipeline.cut.reason if pipeline.cut else None


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_postprocess_case(case: dict[str, Any]) -> None:
    got, _ = run_case(case)
    assert got == case["want"]


def test_streaming_cut_happens_before_the_stream_ends() -> None:
    """The re-typed line is detected while streaming (the engine would be stopped there)."""
    case = next(c for c in CASES if c["name"].startswith("re-typing the next line"))
    _, reason = run_case(case)
    assert reason == "suffix-retype"
