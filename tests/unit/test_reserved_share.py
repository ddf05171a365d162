"""A completion process planned beside a next-edit process (nextedit_plan.paired) keeps its
step-downs out of the next-edit share (``LaunchPlan.reserved``, engine/planning/diagnose.py); a
single process still grows as before."""

from __future__ import annotations

from dataclasses import replace

from vllm_companion.engine.planning.diagnose import Diagnosis, next_plan
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.nextedit_plan import paired
from vllm_companion.engine.planning.plan import plan_launch

GPUS = [Gpu(0, "NVIDIA GeForce RTX 3060", 12288, 12288 - 400, (8, 6))]
PLAN = plan_launch(GPUS)  # 7B AWQ at 0.92; paired: 0.66 beside Sweep 1.5B at 0.21
FREE = Diagnosis("free-memory", "x", free_gib=11.0, total_gib=12.0)


def test_the_pair_reserves_the_next_edit_share_and_a_single_process_none() -> None:
    first = paired(PLAN)
    assert PLAN.next_edit is not None and PLAN.next_edit.gpu_memory_utilization is not None
    assert first.reserved >= PLAN.next_edit.gpu_memory_utilization and PLAN.reserved == 0
    assert first.gpu_memory_utilization is not None and PLAN.gpu_memory_utilization is not None
    assert round(first.gpu_memory_utilization + first.reserved, 2) == PLAN.gpu_memory_utilization


def test_a_free_memory_step_down_leaves_the_reservation_and_keeps_it() -> None:
    first = paired(PLAN)
    single, _ = next_plan(PLAN, FREE, GPUS)
    again, why = next_plan(first, FREE, GPUS)
    assert single is not None and again is not None
    assert single.gpu_memory_utilization == round((11.0 - 0.25) / 12.0 - 0.005, 2)
    assert again.gpu_memory_utilization == round((11.0 - 0.25) / 12.0 - first.reserved - 0.005, 2), why
    assert again.reserved == first.reserved  # the next step-down leaves it too


def test_no_kv_cache_step_down_grows_into_the_next_edit_share() -> None:
    low = replace(paired(PLAN), gpu_memory_utilization=0.5)
    raised, _ = next_plan(low, Diagnosis("kv-cache", "x"), GPUS)
    assert raised is not None and raised.gpu_memory_utilization == round(0.9 - low.reserved, 2)
    at_share, why = next_plan(paired(PLAN), Diagnosis("kv-cache", "x"), GPUS)
    assert at_share is not None and at_share.gpu_memory_utilization == paired(PLAN).gpu_memory_utilization
    assert at_share.max_model_len < paired(PLAN).max_model_len, why  # a shorter context instead
