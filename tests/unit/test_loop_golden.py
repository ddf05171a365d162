"""Loop-guard goldens (tests/data/loops/cases.json): loops that must be cut while streaming,
and real repetitive code that must pass untouched."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vllm_companion.streaming import Pipeline
from vllm_companion.streaming.loops import loop_detectors

CASES = json.loads((Path(__file__).parent.parent / "data/loops/cases.json").read_text(encoding="utf-8"))
TOKEN = re.compile(r"\n|[ \t]{1,8}|\w+|[^\w\s]")


def run(text: str, prefix: str = "") -> tuple[Pipeline, int]:
    pipe = Pipeline(loop_detectors(prefix))
    fed = 0
    for tok in TOKEN.findall(text):
        fed += 1
        if pipe.feed(tok):
            break
    else:
        pipe.close()
    return pipe, fed


@pytest.mark.parametrize("case", CASES["must_cut"], ids=[c["name"] for c in CASES["must_cut"]])
def test_loop_is_cut_while_streaming(case: dict[str, Any]) -> None:
    pipe, fed = run(case["text"], case.get("prefix", ""))
    total = len(TOKEN.findall(case["text"]))
    assert pipe.cut is not None and pipe.cut.reason == case["reason"]
    assert fed < total, "stopped before the stream ended"
    assert fed <= 120
    assert pipe.text == case["keep"]


@pytest.mark.parametrize("case", CASES["must_keep"], ids=[c["name"] for c in CASES["must_keep"]])
def test_legitimate_repetition_passes(case: dict[str, Any]) -> None:
    pipe, _ = run(case["text"], case.get("prefix", ""))
    assert pipe.cut is None, pipe.cut
    assert pipe.text.rstrip("\n") == case["text"].rstrip("\n")
