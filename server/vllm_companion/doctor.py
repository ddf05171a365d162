"""``vllm-companion doctor``: what this machine has, what would be launched and why, and whether
the engine (running, or the one given with --endpoint) is healthy and has its FIM tokens. On a
machine without a usable GPU it shows the CPU's facts, the engine and model engine/planning/cpu.py chose and
why, and the rates ``--calibrate`` measured (engine/calibrate.py: it starts each installed CPU
engine once, so only when asked)."""

from __future__ import annotations

import sys
from dataclasses import replace

from .config import EngineSettings, load_config, redact_url
from .engine.command import engine_installed, engine_module
from .engine.cpu_local import facts_here
from .engine.planning.cpu import CpuFacts, choose, rates_for
from .engine.planning.diagnose import install_hint
from .engine.planning.hardware import Gpu, read_gpus
from .engine.planning.nextedit_plan import next_edit_lines
from .engine.planning.plan import LaunchPlan, plan_launch
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


def _gpus(gpus: list[Gpu]) -> None:
    if not gpus:
        _line("GPU", "none visible to NVML (the CPU profile applies)")
    for g in gpus:
        _line(f"GPU {g.index}", f"{g.name}, {g.total_gb:.1f} GB ({g.free_mb / 1024:.1f} GB free), "
              f"compute {g.compute_capability[0]}.{g.compute_capability[1]}, driver {g.driver}")
        for line in held_by_others(g):
            _line("", line)


def cpu_lines(facts: CpuFacts, overrides: dict[str, object], plan: LaunchPlan) -> list[tuple[str, str]]:
    """The CPU's facts, and for a CPU plan the engine and model chosen and why (pure: tested)."""
    cpu = facts.cpu
    simd = [f for f in ("avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "avx2") if f in cpu.flags]
    lines = [("CPU", f"{cpu.model or '?'}, {cpu.cores} cores usable, {cpu.mem_gib:.1f} GiB available, "
                     f"{' '.join(simd) or 'no AVX2/AVX-512'}"),
             ("CPU engines installed", ", ".join(sorted(facts.installed)) or "none")]
    for engine in ("vllm", "llamacpp"):
        rates = rates_for(facts, engine)
        lines.append((f"rates {engine}", f"{rates.prefill_tps:,.0f} tok/s prompt, {rates.decode_tps:,.0f} tok/s "
                                         f"out (SmolLM2-135M; {rates.source})"))
    if plan.device != "cpu":
        return lines
    choice = choose(facts, overrides)
    lines += [("CPU engine", f"{choice.engine}: {choice.why_engine}"), ("CPU model", choice.why_model)]
    lines += [("warning", choice.warning)] if choice.warning else []
    lines += [("calibration", choice.hint)] if choice.hint else []
    return lines


def _plan(settings: EngineSettings, gpus: list[Gpu], kind: str | None) -> tuple[LaunchPlan, dict[str, object]]:
    """The plan, after the CPU's facts and choice; ``kind``: ``--kind`` as typed (a ``vllm`` in
    the settings cannot be told from the default)."""
    overrides = {**settings.overrides(), **({"kind": kind} if kind else {})}
    facts = facts_here(settings.python)
    plan = plan_launch(gpus, overrides, None if settings.command else facts)
    for label, text in cpu_lines(facts, overrides, plan):
        _line(label, text)
    return plan, overrides


async def doctor(settings: EngineSettings, endpoint: str | None, kind: str | None = None,
                 calibrate: bool = False) -> int:
    from . import __version__

    _line("vllm-companion", __version__)
    _line("python", sys.version.split()[0])
    _gpus(gpus := read_gpus())
    if calibrate:
        await _calibrate(settings)
    plan, overrides = _plan(settings, gpus, kind)
    _line("launch plan", plan.describe())
    _line("why", plan.reason)
    if plan.arithmetic:
        _line("arithmetic", plan.arithmetic)
    for label, text in next_edit_lines(plan):
        _line(label, text)
    if gpus and plan.device == "cuda":
        alone = plan_launch([replace(g, free_mb=g.total_mb) for g in gpus], overrides)
        if alone.describe() != plan.describe():
            _line("with the GPU to itself", alone.describe())
    module = engine_module(plan)
    installed = engine_installed(plan)
    _line("engine package", _version(module) if installed else f"missing: {install_hint(plan)}")
    record = EngineRegistry().read()
    running = alive(record.engine)
    pid = record.engine.pid if record.engine else None
    _line("running engine", f"{record.model} at {record.endpoint} (pid {pid})" if running else "none")
    from .repetition import read_totals

    _line("repetition loops cut", ", ".join(f"{m}: {n}" for m, n in read_totals(
        EngineRegistry().dir / "loops.json").items()) or "none recorded")
    _line("acceptance (30 days)", one_line(EventStore().events()))
    target = endpoint or (record.endpoint if running else None)
    if target:
        key = record.api_key if target == record.endpoint else None
        ok = await _check(target, key)
        return 0 if ok and installed else 1
    return 0 if installed else 1


async def _calibrate(settings: EngineSettings) -> None:
    """Measure each installed CPU engine once (SmolLM2-135M) and cache the rates for this machine."""
    from .engine.calibrate import CalibrationFailed, calibrate_engine, write_calibration
    from .engine.cpu_local import installed_engines
    from .engine.planning.hardware import read_cpu

    measured = {}
    for engine in sorted(installed_engines(settings.python)):
        _line(f"calibrating {engine}", "starting it with SmolLM2-135M (vLLM: about a minute)...")
        try:
            result = await calibrate_engine(engine, EngineRegistry().dir / "logs", settings.python)
        except CalibrationFailed as exc:
            _line(f"calibrating {engine}", f"failed: {exc}")
            continue
        measured[engine] = result
        _line(f"calibrated {engine}", f"{result.prefill_tps:,.0f} tok/s prompt, {result.decode_tps:,.0f} tok/s out")
    if measured:
        _line("calibration cache", str(write_calibration(read_cpu(), measured)))


def _version(module: str) -> str:
    try:
        mod = __import__(module)
        return f"{module} {getattr(mod, '__version__', '?')}"
    except Exception as exc:  # importing vllm can fail for reasons worth showing
        return f"{module} installed but fails to import: {exc}"


async def _check(endpoint: str, api_key: object = None) -> bool:
    from .backend import Backend, BackendError, Connection
    from .backend.fim_check import unknown_fim_tokens
    from .prompts import resolve_family

    config, _ = load_config({"backend": {"endpoint": endpoint, "apiKey": api_key or None}})
    backend = Backend(Connection.attach(config.backend))
    try:
        info, _ = await backend.served_model()
    except BackendError as exc:
        _line("health", f"{redact_url(endpoint)}: {exc}")
        await backend.close()
        return False
    _line("health", f"{redact_url(endpoint)}: ok, model {info.id}, max_model_len {info.max_model_len}")
    family = resolve_family(info.id)
    if family.is_fim:
        bad = await unknown_fim_tokens(backend, family, info.id)
        verdict = "cannot check (no /tokenize)" if bad is None else "ok" if not bad else f"MISSING {bad}"
        _line("FIM tokens", f"{family.name}: {verdict}")
    else:
        _line("FIM tokens", "none (prefix-only prompts; the suffix is used after generation)")
    await backend.close()
    return True
