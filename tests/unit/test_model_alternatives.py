"""The model picker's alternatives (engine/planning/alternatives.py) and a picked candidate's plan
(engine/planning/plan.py: a candidate named in engine.model brings its own quantization and context)."""

from __future__ import annotations

from vllm_companion.engine.planning.alternatives import Alternatives, others
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.plan import plan_launch

RTX_4090 = Gpu(0, "RTX 4090", 24564, 24000, (8, 9))


def test_alternatives_are_the_other_candidates_that_fit_best_first() -> None:
    plan = plan_launch([RTX_4090])
    found = others(plan, [RTX_4090])
    models = [a.model for a in found]
    assert plan.model not in models
    assert models[0] == "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ" and "Qwen/Qwen2.5-Coder-32B-Instruct" not in models
    assert "smaller than the running model" in found[0].why and "1 x RTX 4090" in found[0].why


def test_a_picked_candidate_runs_with_its_own_quantization_and_context() -> None:
    plan = plan_launch([RTX_4090], {"model": "Qwen/Qwen2.5-Coder-7B-Instruct"})
    assert plan.quantization is None and plan.max_model_len == 8192  # not the 32B AWQ's "awq", 4096


async def test_nvml_is_read_once_and_a_cpu_plan_has_no_alternatives() -> None:
    reads: list[int] = []

    def read() -> list[Gpu]:
        reads.append(1)
        return [RTX_4090]

    cache = Alternatives(read)
    plan = plan_launch([RTX_4090])
    first = await cache.for_plan(plan)
    assert await cache.for_plan(plan) == first and len(reads) == 1
    assert await cache.for_plan(plan_launch([])) == [] and await cache.for_plan(None) == []
    assert len(reads) == 1
