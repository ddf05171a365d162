"""README command 1's last step, `vllm-companion demo`: the language server starts the engine
(here the fake engine executable, chosen through the environment as a user may), then an
inline completion and a streamed chat answer over real LSP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_shared_engine import FAKE


def test_demo_round_trip(tmp_path: Path) -> None:
    env = {**os.environ, "VLLM_COMPANION_CACHE": str(tmp_path / "cache"),
           "VLLM_COMPANION_ENGINE_COMMAND": json.dumps(FAKE)}
    done = subprocess.run([sys.executable, "-m", "vllm_companion", "demo", "--device", "cpu", "--model", "fake-model"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--- inline completion" in done.stdout and "ready_engine_answer" in done.stdout
    assert "--- chat" in done.stdout and "finish: stop" in done.stdout
