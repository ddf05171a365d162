"""``vllm-companion doctor``: what this machine has, what would be launched and why, and whether
the engine (running, or the one given with --endpoint) is healthy and has its FIM tokens."""

from __future__ import annotations

import sys
from dataclasses import replace

from .config import EngineSettings, load_config, redact_url
from .engine.command import engine_installed, engine_module
from .engine.diagnose import install_hint
from .engine.hardware import Gpu, read_gpus
from .engine.plan import plan_launch
from .engine.procs import alive
from .engine.registry import EngineRegistry
from .telemetry import EventStore
from .telemetry.report import one_line


def held_by_others(gpu: Gpu) -> list[str]:
    """What other programs hold on ``gpu``, for the doctor's report."""
    held = gpu.total_mb - gpu.free_mb
    lines = [f"{name} (pid {pid}): {mib} MiB" for pid, name, mib in gpu.processes[:8]]
    return [f"held by other programs: {held} MiB", *lines] if held > 0 else []


def _line(label: str, value: object) -> None:
    print(f"{label:<22} {value}")


async def doctor(settings: EngineSettings, endpoint: str | None) -> int:
    from . import __version__

    _line("vllm-companion", __version__)
    _line("python", sys.version.split()[0])
    gpus = read_gpus()
    if not gpus:
        _line("GPU", "none visible to NVML (the CPU profile applies)")
    for g in gpus:
        _line(f"GPU {g.index}", f"{g.name}, {g.total_gb:.1f} GB ({g.free_mb / 1024:.1f} GB free), "
              f"compute {g.compute_capability[0]}.{g.compute_capability[1]}, driver {g.driver}")
        for line in held_by_others(g):
            _line("", line)
    plan = plan_launch(gpus, settings.overrides())
    _line("launch plan", plan.describe())
    _line("why", plan.reason)
    if plan.arithmetic:
        _line("arithmetic", plan.arithmetic)
    if gpus and plan.device == "cuda":
        alone = plan_launch([replace(g, free_mb=g.total_mb) for g in gpus], settings.overrides())
        if alone.describe() != plan.describe():
            _line("with the GPU to itself", alone.describe())
    module = engine_module(plan)
    installed = engine_installed(plan)
    _line("engine package", _version(module) if installed else f"missing: {install_hint(plan)}")
    record = EngineRegistry().read()
    running = alive(record.get("engine"))
    pid = (record.get("engine") or {}).get("pid")
    _line("running engine", f"{record.get('model')} at {record.get('endpoint')} (pid {pid})" if running else "none")
    from .repetition import read_totals

    loops = read_totals(EngineRegistry().dir / "loops.json")
    _line("repetition loops cut", ", ".join(f"{m}: {n}" for m, n in loops.items()) or "none recorded")
    _line("acceptance (30 days)", one_line(EventStore().events()))
    target = endpoint or (record.get("endpoint") if running else None)
    if target:
        key = record.get("apiKey") if target == record.get("endpoint") else None
        ok = await _check(target, key)
        return 0 if ok and installed else 1
    return 0 if installed else 1


def _version(module: str) -> str:
    try:
        mod = __import__(module)
        return f"{module} {getattr(mod, '__version__', '?')}"
    except Exception as exc:  # importing vllm can fail for reasons worth showing
        return f"{module} installed but fails to import: {exc}"


async def _check(endpoint: str, api_key: object = None) -> bool:
    from .backend import Backend, BackendError
    from .completion.fim_check import unknown_fim_tokens
    from .prompts import resolve_family

    config, _ = load_config({"backend": {"endpoint": endpoint, "apiKey": api_key or None}})
    backend = Backend(config.backend)
    try:
        info = await backend.model_info()
    except BackendError as exc:
        _line("health", f"{redact_url(endpoint)}: {exc}")
        await backend.close()
        return False
    _line("health", f"{redact_url(endpoint)}: ok, model {info.id}, max_model_len {info.max_model_len}")
    family = resolve_family(info.id)
    if family.is_fim:
        bad = await unknown_fim_tokens(backend, family)
        verdict = "cannot check (no /tokenize)" if bad is None else "ok" if not bad else f"MISSING {bad}"
        _line("FIM tokens", f"{family.name}: {verdict}")
    else:
        _line("FIM tokens", "none (prefix-only prompts; the suffix is used after generation)")
    await backend.close()
    return True
