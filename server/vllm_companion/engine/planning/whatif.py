"""``vllm-companion plan``: what would run on these GPUs, and the arithmetic behind it.

``--gpu "RTX 4060 Laptop:8188:900"`` (name, total MiB, MiB already used; repeatable; an optional
fourth field is the compute capability, e.g. ``:8.9``) describes a card you have or are about to
buy; without it, the GPUs NVML reports. ``--model``, ``--context`` and ``--utilization`` pin what
the planner would otherwise choose. Pure: the tests call ``what_if`` directly.
"""

from __future__ import annotations

from .architectures import arch_of, quantization_of
from .candidates import MIN_CONCURRENCY, SMALL_CARD_CEILING, SMALL_CARD_MIB
from .hardware import Gpu
from .memory import GIB, fit, utilization_for
from .nextedit_plan import next_edit_lines
from .plan import plan_launch


class BadSpec(ValueError):
    pass


def parse_gpu(spec: str, index: int = 0) -> Gpu:
    """``NAME:TOTAL_MIB:USED_MIB[:CC]`` as NVML would report it."""
    with_cc = spec.count(":") >= 3 and "." in spec.rsplit(":", 1)[-1]
    parts = spec.rsplit(":", 3 if with_cc else 2)
    try:
        name, total, used = parts[0], int(parts[1]), int(parts[2])
        major, _, minor = (parts[3] if len(parts) > 3 else "8.9").partition(".")
        cc = (int(major), int(minor or 0))
    except (IndexError, ValueError) as exc:
        raise BadSpec(f"--gpu {spec!r}: expected NAME:TOTAL_MIB:USED_MIB[:CC], e.g. 'RTX 4060:8188:900'") from exc
    if not (0 < total < 1 << 22 and 0 <= used < total):
        raise BadSpec(f"--gpu {spec!r}: memory out of range")
    return Gpu(index, name, total, total - used, cc)


def what_if(gpus: list[Gpu], model: str | None = None, context: int | None = None,
            utilization: float | None = None) -> list[str]:
    """Lines to print: the GPUs, the plan (or the pinned model) and its arithmetic."""
    lines = [f"GPU {g.index}: {g.name}, {g.total_mb} MiB, {g.total_mb - g.free_mb} MiB held by others" for g in gpus]
    if model is None:
        overrides = {k: v for k, v in (("maxModelLen", context), ("gpuMemoryUtilization", utilization)) if v}
        plan = plan_launch(gpus, overrides)
        lines += [f"plan: {plan.describe()}", f"why: {plan.reason}"]
        if plan.arithmetic:
            lines.append(f"arithmetic: {plan.arithmetic}")
        lines += [f"{label}: {text}" for label, text in next_edit_lines(plan)]
        if plan.device != "cuda" or not overrides:
            return lines
        model = plan.model
    return lines + _pinned(gpus, model, context, utilization)


def _pinned(gpus: list[Gpu], model: str, context: int | None, utilization: float | None) -> list[str]:
    arch = arch_of(model)
    if arch is None or not gpus:
        return [f"{model}: no architecture on record (engine/planning/architectures.py) or no GPU: "
                "cannot do the arithmetic"]
    quant = quantization_of(model, None)
    total = min(g.total_mb for g in gpus)
    ceiling = SMALL_CARD_CEILING if total < 12 * 1024 else 0.92  # as the planner does
    util = utilization or min(utilization_for(g.total_mb, g.free_mb, ceiling) for g in gpus)
    eager, tp = total < SMALL_CARD_MIB, len(gpus)
    length = context or min(arch.max_context, 8192)
    result = fit(arch, quant, total, util, length, eager=eager, tensor_parallel=tp)
    longest = min(arch.max_context, result.tokens)
    lines = [f"model: {model} ({arch.name}, {quant or 'bf16'}, {arch.params_b}B parameters)",
             f"arithmetic: {result.explain()}",
             f"longest context for one request: {longest:,} tokens"]
    if result.kv <= 0:
        lines.append(f"does not fit: {-result.kv / GIB:.2f} GiB short")
    elif result.tokens < length * MIN_CONCURRENCY:
        lines.append(f"fits, but fewer than {MIN_CONCURRENCY} requests of {length:,} tokens at once")
    return lines
