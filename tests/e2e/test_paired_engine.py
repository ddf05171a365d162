"""A GPU plan with a next-edit model launches two engine processes (engine/paired.py), end to end:
the real language server over stdio, NVML's answers from a fake ``pynvml`` (tests/fake_nvml.py:
an RTX 3060 with 12 GB, where the plan puts Sweep next-edit 1.5B beside the completion model),
the engines the fake engine executable (tests/fake_engine.py). Two ports, both endpoints in the
registry record, a next-edit request that propagation cannot answer goes to the next-edit process
in Sweep's format, killing that process leaves completion working and it comes back, and the end
of the session leaves nothing running (tests/leftovers.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.fake_nvml import install
from tests.leftovers import track, wait_gone
from tests.lsp_session import as_dict, inline, inline_eventually, open_doc, session, wait_for

FAKE = [sys.executable, str(Path(__file__).resolve().parent.parent / "fake_engine.py")]
CARD = ("NVIDIA GeForce RTX 3060", 12288, 400, (8, 6))
SWEEP = "sweepai/sweep-next-edit-1.5B"
INLINE_EDIT = "textDocument/copilotInlineEdit"


def arg(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def record_of(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "engine.json"
    return json.loads(path.read_text()) if path.exists() else {}


def sweep_bodies(bodies: Path) -> list[dict[str, Any]]:
    """The generation requests in Sweep's format (its ``current/`` block), in order."""
    return [b for b in read_jsonl(bodies) if "<|file_sep|>current/" in str(b.get("prompt", ""))]


async def ask(client: Any, uri: str, version: int) -> dict[str, Any]:
    params = {"textDocument": {"uri": uri, "version": version}, "position": {"line": 1, "character": 4}}
    return as_dict(await asyncio.wait_for(client.protocol.send_request_async(INLINE_EDIT, params), 20))  # type: ignore[no-any-return]


async def test_next_edit_process_beside_completion_serves_next_edits_and_comes_back(tmp_path: Path) -> None:
    cache, starts, bodies = tmp_path / "cache", tmp_path / "starts.jsonl", tmp_path / "bodies.jsonl"
    run_dir = cache / "run"
    env = {"VLLM_COMPANION_CACHE": str(cache), "FAKE_ENGINE_ARGS": str(starts), "FAKE_ENGINE_BODIES": str(bodies),
           "PYTHONPATH": os.pathsep.join([str(install(tmp_path / "nvml", [CARD])), os.environ.get("PYTHONPATH", "")])}
    init = {"backend": {"launch": True}, "engine": {"command": FAKE, "stallTimeoutS": 20},
            "completion": {"debounceMs": 0}, "nextEdit": {"timeoutMs": 10000}}
    async with session(init, env=env) as client:
        await wait_for(lambda: record_of(run_dir).get("nextEditEndpoint"), timeout=60)
        first, second = read_jsonl(starts)  # the completion process first, then the next-edit one
        assert arg(first, "--gpu-memory-utilization") == "0.66" and "--tokenizer" not in first
        assert arg(second, "--model") == f"{SWEEP}:Q8_0" and arg(second, "--tokenizer") == "Qwen/Qwen2.5-Coder-1.5B"
        assert arg(second, "--gpu-memory-utilization") == "0.21" and "--enforce-eager" in second
        assert arg(first, "--port") != arg(second, "--port")
        record = record_of(run_dir)
        assert record["endpoint"].endswith(f":{arg(first, '--port')}/v1") and record["nextEditModel"] == SWEEP
        assert record["nextEditEndpoint"] == f"http://127.0.0.1:{arg(second, '--port')}/v1"
        tracked = [track(run_dir, extra=[record["nextEdit"]["pid"]], env={"VLLM_COMPANION_CACHE": str(cache)})]
        await wait_for(lambda: said(client, f"next-edit: {SWEEP} ready at"), timeout=20)  # the server uses it

        uri, pos = open_doc(client, "def f(count):\n    █\n", name="f.py")
        assert await inline_eventually(client, uri, pos) == "ready_engine_answer"
        await ask(client, uri, 1)  # nothing was edited: propagation has nothing, the model is asked
        (asked,) = sweep_bodies(bodies)
        assert asked["model"] == SWEEP  # the next-edit process, in Sweep's format

        os.killpg(record["nextEdit"]["pid"], signal.SIGKILL)  # the next-edit process dies
        assert await inline(client, uri, pos) == "ready_engine_answer"  # completion goes on
        await wait_for(lambda: said(client, "next-edit: ") and said(client, "restarting"), timeout=20)  # reported
        await wait_for(lambda: len(read_jsonl(starts)) == 3, timeout=30)  # and restarted
        third = read_jsonl(starts)[2]
        assert arg(third, "--model") == f"{SWEEP}:Q8_0"
        await wait_for(lambda: str(record_of(run_dir).get("nextEditEndpoint")).endswith(f":{arg(third, '--port')}/v1"),
                       timeout=30)
        tracked.append(track(run_dir, extra=[record_of(run_dir)["nextEdit"]["pid"]]))
    for each in tracked:
        wait_gone(each, timeout=30)  # the session's end stopped both
    assert not (run_dir / "engine.json").exists()


def said(client: Any, text: str) -> bool:
    return any(text in str(as_dict(s).get("message", "")) for s in client.statuses)
