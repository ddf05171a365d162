"""A team server (issue 12): `engine start --team` serves with a required key, made and shown
once; listening beyond loopback without a key is refused. Real processes: the CLI service, the
guards, the fake engine executable and, on the team's port, the front (engine/front.py; its
routes are attacked in tests/adversarial/test_team.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx

from tests.e2e.test_shared_engine import FAKE
from tests.fake_backend import dead_port
from tests.lsp_session import inline, open_doc, session


def cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VLLM_COMPANION_CACHE": str(tmp_path / "cache"),
           "VLLM_COMPANION_ENGINE_COMMAND": json.dumps(FAKE)}
    env.pop("VLLM_COMPANION_ENGINE_KEY", None)
    return subprocess.run([sys.executable, "-m", "vllm_companion", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_listening_beyond_loopback_needs_a_key(tmp_path: Path) -> None:
    refused = cli(tmp_path, "engine", "start", "--host", "0.0.0.0", "--device", "cpu", "--model", "fake")
    assert refused.returncode == 2 and "without an API key" in refused.stderr
    elsewhere = cli(tmp_path, "engine", "start", "--team", "--host", "203.0.113.7")
    assert elsewhere.returncode == 2 and "0.0.0.0 or loopback" in elsewhere.stderr


async def test_team_engine_requires_its_key_and_serves_with_it(tmp_path: Path) -> None:
    port = dead_port()
    started = cli(tmp_path, "engine", "start", "--team", "--host", "127.0.0.1", "--port", str(port),
                  "--device", "cpu", "--model", "fake-model")
    try:
        assert started.returncode == 0, started.stderr
        key = started.stderr.split("shown once", 1)[1].splitlines()[1].strip()
        stored = tmp_path / "cache" / "run" / "team.key"
        assert stored.read_text().strip() == key and stat.S_IMODE(stored.stat().st_mode) == 0o600
        endpoint = f"http://127.0.0.1:{port}/v1"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{endpoint}/models")).status_code == 401
            ok = await http.get(f"{endpoint}/models", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        opts = {"backend": {"endpoint": endpoint, "apiKey": key}, "completion": {"debounceMs": 0}}
        async with session(opts) as client:
            uri, pos = open_doc(client, "x = █\n")
            assert await inline(client, uri, pos) == "ready_engine_answer"
    finally:
        cli(tmp_path, "engine", "stop")
    again = cli(tmp_path, "engine", "start", "--team", "--host", "127.0.0.1", "--port", str(port),
                "--device", "cpu", "--model", "fake-model")
    cli(tmp_path, "engine", "stop")
    assert again.returncode == 0 and "shown once" not in again.stderr  # the stored key is reused
