"""``vllm-companion doctor --calibrate``: this machine's prefill and decode rates on each installed
CPU engine, cached per machine, read by the CPU plan (engine/planning/cpu.py) when present.

Explicit on purpose: starting vLLM's CPU build costs 30-35 s (and a one-time GGUF conversion), so
no engine start pays for a calibration. Each engine serves SmolLM2-135M (the reference every
install has) on loopback with a random key; three requests time a cold ``PROMPT_TOKENS`` prompt
(1 token out: the prefill rate), the same prompt again (cached) and it with ``OUT_TOKENS`` out (the
difference: the decode rate). The cache file is keyed on the CPU (model, flags, cores): one from
another machine, a link, another user's file, garbage or one over 16 KiB is ignored
(tests/adversarial/test_cpu_facts.py). Written 0600 with engine/registry.py's ``write_private``.

The engine runs under the guard (engine/guard.py, ``--member``) with a registry record of its own
(``owned_record``: a private folder, never the shared engine's record) that names this process as
its only owner: a doctor killed by SIGKILL (or Ctrl-C before its clean-up) leaves no engine behind,
the guard stops it within two of its intervals (tests/adversarial/test_processes.py). Such a
doctor leaves its record's folder behind; the next calibration removes those (``sweep``).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import secrets
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from .planning.cpu import OUT_TOKENS, Rates
from .planning.hardware import Cpu

log = logging.getLogger(__name__)
CACHE_NAME = "cpu-calibration.json"
MAX_CACHE_BYTES = 16 * 1024
VERSION = 1
ENGINES = ("vllm", "llamacpp")
READY_TIMEOUT_S = 600.0  # vLLM's CPU build: 30-35 s, plus a GGUF conversion the first time
REQUEST_TIMEOUT_S = 120.0
FOLDER_PREFIX = "calibrate-"
STALE_S = 60.0  # a folder younger than this may be a doctor's between making it and writing its record
MAX_SWEPT = 64  # folders looked at per calibration
# About 1,000 tokens of code that no editor sends (so nothing is cached before the first request).
PROMPT = "".join(f"def step_{i}(value, scale={i}):\n    total = value * scale + {i * i}\n    return total\n\n"
                 for i in range(40))

Post = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def cache_path() -> Path:
    from .models import cache_dir

    return cache_dir() / CACHE_NAME


def machine_key(cpu: Cpu) -> str:
    """What makes rates comparable: the CPU model, its flags and the cores this process may use."""
    text = f"{cpu.model}|{' '.join(sorted(cpu.flags))}|{cpu.cores}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def read_calibration(cpu: Cpu, path: Path | None = None) -> dict[str, Rates]:
    """The rates measured on this machine, or {} when the file is absent or not to be trusted."""
    path = path or cache_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_size > MAX_CACHE_BYTES:
            log.warning("ignoring the calibration cache %s: not a small file of yours", path)
            return {}
        data = json.loads(os.read(fd, MAX_CACHE_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        log.warning("ignoring the calibration cache %s: unreadable", path)
        return {}
    finally:
        os.close(fd)
    return parse_calibration(data, cpu)


def parse_calibration(data: object, cpu: Cpu) -> dict[str, Rates]:
    """Rates from a parsed cache file: only this machine's, only sane numbers."""
    if not isinstance(data, dict) or data.get("version") != VERSION or data.get("machine") != machine_key(cpu):
        return {}
    engines = data.get("engines")
    out: dict[str, Rates] = {}
    for engine in ENGINES:
        entry = engines.get(engine) if isinstance(engines, dict) else None
        if not isinstance(entry, dict):
            continue
        prefill, decode = _sane(entry.get("prefill_tps")), _sane(entry.get("decode_tps"))
        if prefill and decode:
            out[engine] = Rates(prefill, decode, f"measured here {str(data.get('when', ''))[:20]}")
    return out


def _sane(value: object) -> float:
    """A rate in tokens a second (0.0: not one): a finite number from 0.01 to a million."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    rate = float(value)
    return rate if math.isfinite(rate) and 0.01 <= rate <= 1e6 else 0.0


def write_calibration(cpu: Cpu, rates: dict[str, Rates], path: Path | None = None) -> Path:
    from ..paths import write_private

    path = path or cache_path()
    body = {"version": VERSION, "machine": machine_key(cpu), "cpu": f"{cpu.model}, {cpu.cores} cores",
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "engines": {e: {"prefill_tps": round(r.prefill_tps, 1), "decode_tps": round(r.decode_tps, 1)}
                        for e, r in rates.items()}}
    write_private(path, json.dumps(body, indent=1))
    return path


async def measure(post: Post, clock: Callable[[], float] = time.perf_counter) -> Rates:
    """Prefill and decode rates from three requests to one engine (``post`` sends a completion
    request and returns its JSON answer; ``clock`` is injected in tests)."""
    async def timed(max_tokens: int) -> tuple[float, dict[str, Any]]:
        start = clock()
        body = await post({"prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True})
        return max(clock() - start, 1e-3), body

    cold, first = await timed(1)
    warm, _ = await timed(1)
    full, last = await timed(OUT_TOKENS + 1)
    prompt_tokens = _usage(first, "prompt_tokens") or len(PROMPT) // 4
    generated = (_usage(last, "completion_tokens") or OUT_TOKENS + 1) - 1
    return Rates(prompt_tokens / cold, max(generated, 1) / max(full - warm, 1e-3), "measured here")


def _usage(body: dict[str, Any], key: str) -> int:
    usage = body.get("usage") if isinstance(body, dict) else None
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and 0 < value < 1 << 20 else 0


class CalibrationFailed(Exception):
    """Why an engine could not be measured (it did not start, or its answers were not usable)."""


async def calibrate_engine(engine: str, log_dir: Path, python: str | None = None,
                           prefix: list[str] | None = None) -> Rates:
    """Start ``engine`` with SmolLM2 on loopback (under a guard that stops it with this process),
    measure it, stop it; raises ``CalibrationFailed``. ``prefix``: replaces [python, -m, module]."""
    import httpx2 as httpx  # the client comes from the one factory (httpclient.py)

    from .command import EngineCommand, build_command, resolve_model
    from .planning.plan import LaunchPlan, plan_launch
    from .procs import GUARD_MODULE
    from .supervised import Policy
    from .supervisor import ProcessSupervisor

    # llama.cpp answers no health check while it reads a prompt: the supervisor sees it at work
    # (engine/busy.py) and does not restart it mid-measurement.
    policy = Policy(stop_grace_s=5.0)
    plan = plan_launch([], {"kind": engine, "device": "cpu"})
    key, model_path = secrets.token_urlsafe(24), resolve_model(plan)
    with owned_record() as record:
        guard = [sys.executable, "-m", GUARD_MODULE, str(record), "--member", "--"]

        def build(p: LaunchPlan, port: int) -> EngineCommand:
            command = build_command(p, port, model_path, python or sys.executable, prefix, api_key=key)
            return replace(command, argv=[*guard, *command.argv])

        sup = ProcessSupervisor(plan, build, log_dir, lambda _event: None, policy, [])
        try:
            await sup.start()
            if not await sup.wait_ready(READY_TIMEOUT_S) or not sup.endpoint:
                raise CalibrationFailed(f"{engine} did not start: {sup.last_error or 'see ' + str(sup.log_path)}")
            return await _measure_at(sup.endpoint, plan.served_name, key)
        except (httpx.HTTPError, ValueError) as exc:
            raise CalibrationFailed(f"{engine}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            await sup.stop()


async def _measure_at(endpoint: str, model: str, key: str) -> Rates:
    from ..httpclient import http_client

    async with http_client(REQUEST_TIMEOUT_S, key) as http:
        async def post(body: dict[str, Any]) -> dict[str, Any]:
            answer = await http.post(f"{endpoint}/completions", json={"model": model, **body})
            answer.raise_for_status()
            parsed: dict[str, Any] = answer.json()
            return parsed

        return await measure(post)


@contextlib.contextmanager
def owned_record() -> Iterator[Path]:
    """A registry record (engine/record.py's form) in a private folder of its own, naming this
    process (by identity: a reused PID owns nothing) as the only owner. The guard reads it: once this
    process is gone the record parses as empty and the guard stops the engine. Removed on the way out."""
    from .procs import ProcessId
    from .registry import EngineRegistry, runtime_dir

    runtime = runtime_dir()
    sweep(runtime)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=runtime))
    try:
        registry = EngineRegistry(folder)
        registry.own(ProcessId.me())
        yield registry.path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sweep(runtime: Path) -> None:
    """Remove the record folders of calibrations whose doctor is gone (killed before its clean-up:
    its guard stopped the engine, nobody removed the folder, and they piled up). Only our own real
    folders (never through a link), older than ``STALE_S``, whose record names no live process by
    identity (a reused PID keeps nothing); an unreadable record in our private folder is stale too."""
    from ..paths import UnsafeDirectory
    from .procs import alive
    from .registry import EngineRegistry

    for folder in itertools.islice(runtime.glob(FOLDER_PREFIX + "*"), MAX_SWEPT):
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or time.time() - info.st_mtime < STALE_S:
            continue
        try:
            owners = EngineRegistry(folder).read().owners  # bounded, never through a link
        except (OSError, UnsafeDirectory):
            owners = ()
        if not any(alive(owner) for owner in owners):
            shutil.rmtree(folder, ignore_errors=True)
