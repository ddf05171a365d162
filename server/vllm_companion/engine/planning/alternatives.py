"""The launch plan's other candidates: what else this machine could run, for the model picker.

When this server launched the engine, the planner (engine/planning/plan.py) took the first of its
``CANDIDATES`` that fits the GPUs; the others that fit are the picker's alternatives (each needs
an engine restart with ``engine.model`` set). They are judged at the running plan's own
``gpu-memory-utilization`` against each card's total memory (``replan``, the same arithmetic as a
step-down), not against the free memory NVML reports now: the engine itself holds most of it.

Cheap and bounded: the GPUs are read from NVML once per server (a card's total memory and compute
capability do not change while it runs; NVML's first call costs ~50-100 ms) in a thread, the
arithmetic is pure (at most ``len(CANDIDATES)``² fits, microseconds each), and the answer is
cached per plan. A CPU plan has no alternatives: it has one model (docs/models.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

from .candidates import CANDIDATES
from .hardware import Gpu, read_gpus
from .plan import LaunchPlan, replan

DEFAULT_UTILIZATION = 0.9  # a plan with no utilization on record (overridden to none)


@dataclass(frozen=True)
class Alternative:
    model: str
    why: str


class Alternatives:
    """Alternatives per plan, with the GPUs read once (``read`` is NVML; tests inject theirs)."""

    def __init__(self, read: Callable[[], list[Gpu]] = read_gpus) -> None:
        self._read = read
        self._gpus: list[Gpu] | None = None
        self._cached: tuple[LaunchPlan, list[Alternative]] | None = None

    async def for_plan(self, plan: LaunchPlan | None) -> list[Alternative]:
        if plan is None or plan.device != "cuda":
            return []
        if self._cached is not None and self._cached[0] == plan:
            return self._cached[1]
        if self._gpus is None:
            self._gpus = await asyncio.to_thread(self._read)
        found = others(plan, self._gpus)
        self._cached = (plan, found)
        return found


def others(plan: LaunchPlan, gpus: list[Gpu]) -> list[Alternative]:
    """Every candidate but ``plan``'s own that fits these GPUs at the plan's utilization, best
    first, each with why it is there (pure: the tests give it any card)."""
    if plan.device != "cuda" or not gpus:
        return []
    utilization = plan.gpu_memory_utilization or DEFAULT_UTILIZATION
    seen = {plan.model}
    out: list[Alternative] = []
    for index in range(len(CANDIDATES)):
        found = replan(replace(plan, candidate=index), gpus, utilization)
        if found is None or found.model in seen:
            continue
        seen.add(found.model)
        out.append(Alternative(found.model, _why(found, plan, gpus[0].name)))
    return out


def _why(found: LaunchPlan, current: LaunchPlan, gpu: str) -> str:
    """"14B AWQ, larger than the running model: fits at max-model-len 8192 on 1 x RTX 4090"."""
    cand = CANDIDATES[found.candidate]
    names = [c.model for c in CANDIDATES]
    if current.model in names:
        size = "larger than" if found.candidate < names.index(current.model) else "smaller than"
        rank = f", {size} the running model"
    else:
        rank = ""
    return f"{cand.note}{rank}: fits at max-model-len {found.max_model_len} on {found.tensor_parallel} x {gpu}"
