"""The quality benchmark itself (issue 13) on a few cases: cases are cut from real files as
described, scores mean what they say, and both the raw call and the pipeline variants run end to
end (language server over stdio) against the fake engine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from tests.fake_backend import FakeBackend, Reply

ROOT = Path(__file__).resolve().parents[2]


def bench() -> Any:
    if str(ROOT / "scripts") not in sys.path:  # as ``python scripts/bench_quality.py`` has it (its bench_paths)
        sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "scripts" / "bench_quality.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = module
    spec.loader.exec_module(module)
    return module


def test_cases_are_cut_per_kind_from_real_files() -> None:
    b = bench()
    cases = b.build_cases(16, 1)
    assert len(cases) == 16 and {c.kind for c in cases} == set(b.KINDS)
    for case in cases:
        assert case.target.strip() and case.suffix.startswith(("\n", ")", "]", "}", "'", '"'))
        if case.kind == "block":
            assert 1 <= case.target.count("\n") <= 5
        if case.kind in ("end-of-line", "next-line"):
            assert "\n" not in case.target and case.suffix.startswith("\n")
    assert [c.target for c in b.build_cases(16, 1)] == [c.target for c in cases]  # seeded


def test_scores() -> None:
    b = bench()
    case = b.Case("python", "block", "x.py", "def f():\n    ", "\n", "a = 1\n    return a")
    assert b.score(case, "a = 1\n    return a\n    more")["exact"] == 1.0  # cut to the target's lines
    partial = b.score(case, "a = 1\n    return b")
    assert partial["first line"] == 1.0 and partial["accept"] == 1.0 and partial["exact"] == 0.0
    wrong = b.score(case, "zzz")
    assert wrong["accept"] == 0.0 and wrong["edit sim"] < 0.3 and wrong["empty"] == 0.0
    assert b.score(case, "a = ")["starts"] == 1.0
    assert b.score(case, None)["empty"] == 1.0


async def test_raw_and_pipeline_variants_run_end_to_end(backend: FakeBackend) -> None:
    b = bench()
    backend.default = Reply(chunks=["value"])
    cases = b.build_cases(4, 2)
    b.VARIANTS["no context"] = {"contextSources": []}
    for name in ("raw", "pipeline", "no context"):
        rows = await b.run_variant(name, cases, backend.url, backend.model, "")
        assert len(rows) == 4 and all(0 <= r["edit sim"] <= 1 for r in rows)
    sent = [r.body for r in backend.generation_requests()]
    assert len(sent) == 12 and cases[0].prefix.endswith(sent[0]["prompt"]) and sent[0]["temperature"] == 0.0
    # The pipeline has the case's real folder around it: its open neighbours are context.
    assert any("<|file_sep|>" in s["prompt"] for s in sent[4:8])
    assert not any("<|file_sep|>" in s["prompt"] for s in sent[8:])
    assert b.summary("pipeline", rows).startswith("| pipeline | ")
