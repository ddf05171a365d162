"""What engine/planning/cpu.py decides from, read on this machine: the CPU (engine/planning/hardware.py), the engines
importable here, FIM code models already on disk, and the rates ``doctor --calibrate`` measured.

Nothing here touches the network: a code model counts as "reachable" when it is in the Hugging
Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``), e.g.
``models--Qwen--Qwen2.5-Coder-0.5B`` (safetensors, for vLLM) or ``models--*--Qwen2.5-Coder-1.5B*GGUF``
(for llama.cpp); ``engine.model`` pointing at a file is the explicit way. Listings are bounded
(``MAX_ENTRIES`` per folder), so a huge cache costs milliseconds, and nothing is opened but names.
``--cpu`` specs for ``vllm-companion plan`` are parsed here too.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .. import paths
from .calibrate import read_calibration
from .planning.cpu import CpuFacts, LocalModel, Rates
from .planning.hardware import Cpu, read_cpu

# FIM-trained and small enough for a CPU: the name in a cache folder, and the hub id
CODE_MODELS = {"qwen2.5-coder-1.5b": "Qwen/Qwen2.5-Coder-1.5B", "qwen2.5-coder-0.5b": "Qwen/Qwen2.5-Coder-0.5B"}
MAX_ENTRIES = 4096
MODULES = {"vllm": "vllm", "llamacpp": "llama_cpp"}
GGUF_PREFERENCE = ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0")  # closest to the trained weights first


def installed_engines(python: str | None = None) -> frozenset[str]:
    """Engines importable by this interpreter (``find_spec``: nothing imported). Another
    interpreter (``engine.python``) is not probed here: both are assumed, the CPU decides."""
    if python:
        return frozenset(MODULES)
    return frozenset(e for e, module in MODULES.items() if importlib.util.find_spec(module) is not None)


def hub_cache() -> Path:
    return paths.hf_hub_cache()


def _entries(folder: Path) -> list[Path]:
    """At most ``MAX_ENTRIES`` of a folder's entries, sorted (empty when unreadable)."""
    try:
        with os.scandir(folder) as it:
            names = [entry.name for _, entry in zip(range(MAX_ENTRIES), it, strict=False)]
    except OSError:
        return []
    return [folder / name for name in sorted(names)]


def cached_code_models(hub: Path | None = None) -> tuple[LocalModel, ...]:
    """FIM code models in the Hugging Face cache: a snapshot with config and safetensors (vLLM)
    or a GGUF file (llama.cpp)."""
    found: list[LocalModel] = []
    for repo in _entries(hub or hub_cache()):
        org, _, name = repo.name.removeprefix("models--").partition("--")
        if not repo.name.startswith("models--") or not any(m in name.lower() for m in CODE_MODELS):
            continue
        for snapshot in _entries(repo / "snapshots")[-1:]:  # one revision is enough
            model = _in_snapshot(f"{org}/{name}", snapshot)
            if model is not None:
                found.append(model)
    return tuple(found)


def _in_snapshot(repo_id: str, snapshot: Path) -> LocalModel | None:
    files = _entries(snapshot)
    ggufs = [f for f in files if f.name.lower().endswith(".gguf")]
    if ggufs:
        best = min(ggufs, key=lambda f: next((i for i, q in enumerate(GGUF_PREFERENCE) if q in f.name.lower()), 99))
        try:
            size = best.stat().st_size
        except OSError:
            return None
        return LocalModel(repo_id.removesuffix("-GGUF"), str(best), "llamacpp", size)
    names = {f.name for f in files}
    if "config.json" in names and any(n.endswith(".safetensors") for n in names):
        return LocalModel(repo_id, str(snapshot), "vllm")
    return None


def facts_here(python: str | None = None) -> CpuFacts:
    """All of it, for this machine (milliseconds: /proc, find_spec, two short folder listings)."""
    cpu = read_cpu()
    return CpuFacts(cpu, installed_engines(python), cached_code_models(), read_calibration(cpu))


class BadCpuSpec(ValueError):
    pass


def parse_cpu_spec(spec: str) -> CpuFacts:
    """``flags=avx2,fma;cores=2;mem_gib=24[;engines=vllm,llamacpp][;cached=qwen2.5-coder-0.5b]
    [;rates=llamacpp:162/28,vllm:42/15]``: a machine to plan for (``vllm-companion plan --cpu``)."""
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("flags", "cores", "mem_gib", "engines", "cached", "rates"):
            raise BadCpuSpec(f"{part!r}: expected flags=, cores=, mem_gib=, engines=, cached= or rates=")
        fields[key.strip()] = value.strip()
    flags = frozenset(f for f in fields.get("flags", "").replace(" ", ",").split(",") if f)
    cores, mem = _number(fields.get("cores", "2"), "cores", 1, 4096), _number(fields.get("mem_gib", "16"), "mem_gib",
                                                                                0, 1 << 20)
    engines = frozenset(_names(fields.get("engines", "vllm,llamacpp"), set(MODULES), "engines"))
    cached = tuple(LocalModel(CODE_MODELS[m], f"/cache/{m}", e, 0)
                   for m in _names(fields.get("cached", ""), set(CODE_MODELS), "cached") for e in sorted(engines))
    return CpuFacts(Cpu("what-if", flags, int(cores), mem), engines, cached, _rates(fields.get("rates", "")))


def _number(text: str, name: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadCpuSpec(f"{name}={text!r}: expected a number from {low:g} to {high:g}")
    return value


def _names(text: str, allowed: set[str], name: str) -> list[str]:
    given = [n.strip().lower() for n in text.split(",") if n.strip()]
    if bad := [n for n in given if n not in allowed]:
        raise BadCpuSpec(f"{name}: {', '.join(bad)} unknown (known: {', '.join(sorted(allowed))})")
    return given


def _rates(text: str) -> dict[str, Rates]:
    out: dict[str, Rates] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        engine, _, pair = item.partition(":")
        prefill, _, decode = pair.partition("/")
        _names(engine, set(MODULES), "rates")
        out[engine] = Rates(_number(prefill, "prefill", 0.01, 1e6), _number(decode, "decode", 0.01, 1e6),
                            "given with --cpu")
    return out
