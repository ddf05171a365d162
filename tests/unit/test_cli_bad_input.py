"""Bad command-line values: a usage line naming the rule and exit 2, never a traceback and never
a value silently dropped (issue 23). Each row ran without complaint, or with a traceback, before."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    (["lsp", "--tcp", "garbage"], "HOST:PORT"),
    (["lsp", "--tcp", "127.0.0.1:99999"], "TCP port"),
    (["lsp", "--tcp", "127.0.0.1:http"], "TCP port"),
    (["lsp", "--tcp", "bad host!:2087"], "host name"),
    (["plan", "--gpu", "RTX 3090:24576:0", "--utilization", "5"], "at most 1"),
    (["plan", "--gpu", "RTX 3090:24576:0", "--utilization", "0"], "above 0"),
    (["plan", "--gpu", "RTX 3090:24576:0", "--utilization", "nan"], "above 0"),
    (["plan", "--gpu", "RTX 3090:24576:0", "--context", "-1"], "at least 1"),
    (["plan", "--gpu", "RTX 3090:24576:0", "--model", "does/not-exist"], "no architecture"),
    (["doctor", "--model", "does/not-exist"], "no architecture"),
    (["complete", "x.py:1:1", "--family", "nonsense"], "expected auto or one of"),
    (["complete", "x.py:1:1", "--max-tokens", "0"], "at least 1"),
    (["engine", "start", "--port", "0"], "TCP port"),
    (["engine", "start", "--replicas", "-2"], "at least 1"),
    (["stats", "--days", "-3"], "above 0"),
]


@pytest.mark.parametrize(("argv", "says"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_value_is_a_usage_error(argv: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "vllm_companion", *argv], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert "usage:" in done.stderr and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_good_values_still_plan() -> None:
    done = subprocess.run([sys.executable, "-m", "vllm_companion", "plan", "--gpu", "RTX 3090:24576:0",
                           "--model", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "--utilization", "0.9",
                           "--context", "8192"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "arithmetic:" in done.stdout
