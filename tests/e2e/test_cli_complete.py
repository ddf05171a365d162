"""``vllm-companion complete`` from a terminal (issue 23, item 3): with no ``--endpoint`` it uses
the running shared engine's record (endpoint and key), as the editors do; when nothing answers it
names the URL it tried and what to run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_shared_engine import FAKE
from tests.fake_backend import dead_port


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VLLM_COMPANION_CACHE": str(tmp_path / "cache"),
           "VLLM_COMPANION_ENGINE_COMMAND": json.dumps(FAKE)}
    for name in ("VLLM_COMPANION_ENDPOINT", "VLLM_COMPANION_ENGINE_KEY", "VLLM_COMPANION_API_KEY"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "vllm_companion", *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_complete_uses_the_running_shared_engine(tmp_path: Path) -> None:
    source = tmp_path / "area.py"
    source.write_text("def area(r):\n    return \n")
    started = cli(tmp_path, "engine", "start", "--device", "cpu", "--model", "fake-model")
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        done = cli(tmp_path, "complete", f"{source}:2:12")
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip(), done.stderr[-2000:]
    finally:
        cli(tmp_path, "engine", "stop")


def test_complete_names_the_url_it_tried_and_what_to_run(tmp_path: Path) -> None:
    source = tmp_path / "area.py"
    source.write_text("x = \n")
    where = f"127.0.0.1:{dead_port()}/v1"
    done = cli(tmp_path, "complete", f"{source}:1:5", "--endpoint", f"http://user:secret@{where}")
    assert done.returncode == 1
    assert f"no completion from http://***@{where}" in done.stderr and "secret" not in done.stderr
    assert "vllm-companion engine start" in done.stderr
