#!/usr/bin/env python3
"""A stand-in for the engine executable, at the process boundary, for supervisor fault tests.

Takes vLLM's command line (only --port and --served-model-name matter). Behaviour per start
comes from the JSON list in $FAKE_ENGINE_SCRIPT (each start pops the first entry; the last one
repeats), and every start appends its argv to $FAKE_ENGINE_ARGS (JSON lines) so tests can check
step-downs. Modes: ok, slow (2 s), late (6 s), crash_start, crash_after_ready, oom, kv, kv_small, port_taken, hang,
gated, missing, free_memory, graph_capture, no_health (like llama-cpp-python: no /health, an access-log line per probe),
workers and stubborn_workers (see ``spawn_workers``: vLLM's EngineCore and Worker, which outlive a killed API server),
busy and frozen (see ``silent``: every completion request blocks the whole server for $FAKE_ENGINE_SILENT_S, answering
nothing else meanwhile, like llama.cpp reading a long prompt: ``busy`` burns CPU on a thread, ``frozen`` sleeps).
With $FAKE_ENGINE_WORKERS every start appends a JSON line: its own identity, its workers', and the
workers of earlier starts still running when it started (``leftovers``: what a restart must not find).
A ready engine serves the fake OpenAI API (tests/fake_backend.py); with $FAKE_ENGINE_SAY_PORT
it answers ``answer_from_<port>`` (fleet tests see which replica served).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FAILURES = {
    "crash_start": "RuntimeError: Engine core initialization failed. See root cause above.",
    "oom": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 112.00 MiB.",
    "kv": "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`.",
    "kv_small": "ValueError: The model's max seq len (4096) is larger than the maximum number of tokens that "
                "can be stored in KV cache (1500). Try increasing `gpu_memory_utilization`.",
    "port_taken": "OSError: [Errno 98] Address already in use",
    "gated": "huggingface_hub.errors.GatedRepoError: 401 Client Error. Cannot access gated repo.",
    "missing": "ModuleNotFoundError: No module named 'vllm'",
    # vLLM's start-up memory check, word for word (vllm/v1/worker/utils.py request_memory)
    "free_memory": "ValueError: Free memory on device (6.92/8.0 GiB) on startup is less than desired GPU memory "
                   "utilization (0.9, 7.2 GiB). Decrease GPU memory utilization or reduce GPU memory used by "
                   "other processes.",
    # CUDA-graph capture running out of memory (8 GB cards at 0.8 and above)
    "graph_capture": "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):  40%|####      | 27/67\n"
                     "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total "
                     "capacity of 7.63 GiB of which 17.44 MiB is free.",
}


def say(line: str) -> None:
    print(line, flush=True)


def next_mode() -> str:
    path = os.environ.get("FAKE_ENGINE_SCRIPT")
    if not path:
        return "ok"
    modes = json.loads(Path(path).read_text())
    mode = modes[0]
    if len(modes) > 1:
        Path(path).write_text(json.dumps(modes[1:]))
    return str(mode)


def arg(name: str, default: str) -> str:
    argv = sys.argv
    return argv[argv.index(name) + 1] if name in argv else default


def load_backend() -> None:
    """Import the fake server (through the client it imports openai: 2-4 s on a loaded 2-core
    machine), saying so every 0.25 s as vLLM's own start logs: a silent start is a stall."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(0.25):
            say("INFO fake engine importing")

    threading.Thread(target=beat, daemon=True).start()
    try:
        import tests.fake_backend  # noqa: F401
    finally:
        done.set()


def silent(mode: str) -> None:
    """Block the server (called on its event loop) for $FAKE_ENGINE_SILENT_S seconds. ``busy``: a
    thread burns CPU while the main thread waits for it (so only a thread's CPU time shows the
    work, as with llama.cpp's); ``frozen``: nothing runs at all (a deadlock)."""
    seconds = float(os.environ.get("FAKE_ENGINE_SILENT_S", "8"))
    if mode == "frozen":
        time.sleep(seconds)
        return

    def burn() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sum(range(10_000))

    worker = threading.Thread(target=burn)
    worker.start()
    worker.join()


async def serve(port: int, model: str, crash_after: float | None, llamacpp_like: bool = False,
                mode: str = "ok") -> None:
    from tests.fake_backend import FakeBackend, Reply

    fake = FakeBackend(model=model, max_model_len=int(arg("--max-model-len", "2048")))
    if llamacpp_like:  # no /health, and an access-log line for every probe
        fake.health_enabled, fake.access_log = False, True
    bodies = os.environ.get("FAKE_ENGINE_BODIES")

    def reply(body: dict[str, object]) -> Reply:
        if bodies:  # tests read what the server sent (priority, ...)
            with open(bodies, "a") as f:
                f.write(json.dumps(body) + "\n")
        if mode in ("busy", "frozen"):
            silent(mode)
        say_port = os.environ.get("FAKE_ENGINE_SAY_PORT")
        return Reply(chunks=[f"answer_from_{port}" if say_port else "ready_engine_answer"])

    fake.default = reply
    fake.api_key = os.environ.get("VLLM_API_KEY") or None  # as vLLM does
    await fake.start(port)
    say(f"INFO:     Uvicorn running on http://127.0.0.1:{port}")
    if crash_after is not None:
        await asyncio.sleep(crash_after)
        say("RuntimeError: EngineCore died unexpectedly")
        os._exit(1)
    await asyncio.Event().wait()


# A worker: names itself as vLLM's do (its argv and comm carry no path: found by session and
# identity, never by command line), ignores SIGTERM if asked (a stuck EngineCore), runs on.
WORKER = """import os, signal, sys, time
open("/proc/self/comm", "wb").write(open("/proc/self/cmdline", "rb").read().split(b"\\0")[0][:15])
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(3600)
"""


def identity(pid: int) -> dict[str, Any] | None:
    """(pid, start time) as /proc/<pid>/stat has them; None for a process gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()
    return None if fields[0] == b"Z" else {"pid": pid, "start": int(fields[19])}


def spawn_workers(stubborn: bool) -> list[dict[str, Any]]:
    """Like vLLM: ``VLLM::EngineCore`` in the engine's process group, and ``VLLM::Worker`` in a
    group of its own (same session). Neither is waited for; both keep running when this dies."""
    arg = "stubborn" if stubborn else "plain"
    core = subprocess.Popen(["VLLM::EngineCore", "-c", WORKER, arg], executable=sys.executable)
    worker = subprocess.Popen(["VLLM::Worker", "-c", WORKER, arg], executable=sys.executable, process_group=0)
    time.sleep(0.1)
    return [x for x in (identity(core.pid), identity(worker.pid)) if x]


def record_start(mode: str) -> None:
    path = os.environ.get("FAKE_ENGINE_WORKERS")
    if not path:
        return
    earlier = [json.loads(x) for x in Path(path).read_text().splitlines()] if Path(path).exists() else []
    leftovers = [w for line in earlier for w in line["workers"] if identity(w["pid"]) == w]
    workers = spawn_workers(mode == "stubborn_workers") if mode in ("workers", "stubborn_workers") else []
    line = {"server": identity(os.getpid()), "workers": workers, "leftovers": leftovers}
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


def main() -> None:
    if path := os.environ.get("FAKE_ENGINE_ARGS"):
        with open(path, "a") as f:
            f.write(json.dumps(sys.argv[1:]) + "\n")
    mode = next_mode()
    record_start(mode)
    port, model = int(arg("--port", "8000")), arg("--served-model-name", "fake")
    say(f"INFO fake engine starting ({mode}) on port {port}")
    if mode in FAILURES:
        time.sleep(0.2)
        say(FAILURES[mode])
        sys.exit(1)
    if mode == "hang":
        time.sleep(3600)
    load_backend()
    steps = {"slow": 5, "late": 15}.get(mode, 1)
    for i in range(1, steps + 1):
        time.sleep(0.4 if mode in ("slow", "late") else 0.05)
        say(f"Loading safetensors checkpoint shards: {100 * i // steps}% Completed")
    asyncio.run(serve(port, model, 1.0 if mode == "crash_after_ready" else None, mode == "no_health", mode))


if __name__ == "__main__":
    main()
