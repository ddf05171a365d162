"""The next-edit choice of a launch plan (engine/planning/nextedit_plan.py), over injected GPUs:
which cards get a Sweep next-edit model in a second vLLM process, and that the two shares fit in
the one the free memory allows while the completion plan keeps its model (docs/models.md)."""

from __future__ import annotations

import pytest

from vllm_companion.engine.planning.architectures import arch_of
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.memory import fit
from vllm_companion.engine.planning.nextedit_plan import (
    KEEP_CONTEXT,
    LAUNCHED,
    NE_CONCURRENCY,
    NE_CONTEXT,
    NEXT_EDIT_MODELS,
    SECOND_PROCESS_MIB,
    next_edit_lines,
    paired,
)
from vllm_companion.engine.planning.plan import device_of, plan_launch, replan

LAPTOP = "NVIDIA GeForce RTX 4060 Laptop GPU"
SWEEP_15, SWEEP_05 = (m.repo for m in NEXT_EDIT_MODELS)


def used(name: str, total_mib: int, used_mib: int, cc: tuple[int, int] = (8, 9), index: int = 0) -> Gpu:
    return Gpu(index, name, total_mib, total_mib - used_mib, cc, "560.35")


# card -> (next-edit model or None, its share, the completion share and context beside it)
CARDS = [
    (used(LAPTOP, 8188, 300), None, None, None, None),  # 7B AWQ would step down to 3B AWQ
    (used(LAPTOP, 8188, 900), None, None, None, None),
    (used(LAPTOP, 8188, 1800), SWEEP_15, 0.31, 0.36, 4096),  # 3B AWQ already: it stays beside the 1.5B
    (used("NVIDIA GeForce RTX 3060", 12288, 400, (8, 6)), SWEEP_15, 0.21, 0.66, 4096),
    (used("NVIDIA GeForce RTX 4090", 24564, 500), None, None, None, None),  # 32B AWQ would become 14B AWQ
    (used("NVIDIA A100-PCIE-40GB", 40960, 400, (8, 0)), SWEEP_15, 0.07, 0.83, 8192),
    (used("NVIDIA H100 80GB HBM3", 81559, 500, (9, 0)), SWEEP_15, 0.04, 0.87, 8192),  # 16,384 -> 8,192
    (used("NVIDIA H200", 143771, 500, (9, 0)), SWEEP_15, 0.03, 0.88, 16384),
]


@pytest.mark.parametrize(("gpu", "model", "share", "completion_share", "context"), CARDS,
                         ids=["4060-0.3gb", "4060-0.9gb", "4060-1.8gb", "3060-12gb", "4090-24gb", "a100-40gb",
                              "h100-80gb", "h200-141gb"])
def test_next_edit_choice_per_card(gpu: Gpu, model: str | None, share: float | None,
                                   completion_share: float | None, context: int | None) -> None:
    plan = plan_launch([gpu])
    choice = plan.next_edit
    assert choice is not None and choice.model == model
    assert (choice.gpu_memory_utilization, choice.completion_share, choice.completion_context) == (
        share, completion_share, context)
    if model is None:
        assert "step down" in choice.reason and choice.describe() == "the completion model, generic prompt"
        assert paired(plan) is plan
        return
    # the pair's shares fit in the single plan's, the second process's CUDA context included
    assert plan.gpu_memory_utilization is not None and share is not None and completion_share is not None
    assert completion_share + share + SECOND_PROCESS_MIB / gpu.total_mb <= plan.gpu_memory_utilization
    # the next-edit process holds its prompts by the same arithmetic
    base = next(m.base for m in NEXT_EDIT_MODELS if m.repo == model)
    arch = arch_of(base)
    assert arch is not None
    ne = fit(arch, "q8_0", gpu.total_mb, share, NE_CONTEXT, eager=True, max_num_seqs=choice.max_num_seqs)
    assert ne.tokens >= NE_CONTEXT * NE_CONCURRENCY and f"{ne.tokens:,} tokens" in choice.arithmetic
    # the completion process keeps its model, and its context (or at least KEEP_CONTEXT)
    pair = paired(plan)
    assert (pair.model, pair.gpu_memory_utilization, pair.max_model_len) == (plan.model, completion_share, context)
    assert pair.max_model_len >= min(plan.max_model_len, KEEP_CONTEXT)
    main_arch = arch_of(plan.model)
    assert main_arch is not None
    main = fit(main_arch, plan.quantization, gpu.total_mb, completion_share, pair.max_model_len,
               eager=plan.enforce_eager, max_num_seqs=plan.max_num_seqs)
    assert main.tokens >= 2 * pair.max_model_len
    assert choice.weights == f"{model}:Q8_0" and choice.tokenizer == base


def test_the_plan_keeps_the_single_share_and_says_the_pair_is_launched() -> None:
    plan = plan_launch([used("NVIDIA GeForce RTX 3060", 12288, 400, (8, 6))])
    assert plan.gpu_memory_utilization == 0.92 and plan.max_model_len == 4096  # paired(plan) is the pair's
    lines = dict(next_edit_lines(plan))
    assert lines["next-edit launch"] == LAUNCHED and "planned only" not in LAUNCHED and SWEEP_15 in lines["next-edit"]
    assert "shares: completion 0.66 + next-edit 0.21" in lines["next-edit arithmetic"]


def test_memory_overrides_and_several_gpus_keep_one_process() -> None:
    card = used("NVIDIA H200", 143771, 500, (9, 0))
    for overrides in ({"gpuMemoryUtilization": 0.5}, {"maxModelLen": 4096}, {"model": "my/own-model"}):
        choice = plan_launch([card], overrides).next_edit
        assert choice is not None and choice.model is None and "set by hand" in choice.reason
    picked = plan_launch([card], {"model": "Qwen/Qwen2.5-Coder-7B-Instruct", "kind": "vllm"}).next_edit
    assert picked is not None and picked.model == SWEEP_15  # the model picker's candidates keep the arithmetic
    two = plan_launch([card, used("NVIDIA H200", 143771, 500, (9, 0), 1)]).next_edit
    assert two is not None and two.model is None and "several GPUs" in two.reason


def test_cpu_plans_and_step_downs_have_no_second_model() -> None:
    cpu = plan_launch([])
    assert cpu.next_edit is None and "nextEdit.model on" in dict(next_edit_lines(cpu))["next-edit"]
    card = used("NVIDIA GeForce RTX 3060", 12288, 400, (8, 6))
    again = replan(plan_launch([card]), [card], 0.6)
    assert again is not None and again.next_edit is None


def test_device_of_the_recorded_description() -> None:
    assert device_of(plan_launch([]).describe()) == "cpu"
    assert device_of(plan_launch([used(LAPTOP, 8188, 300)]).describe()) == "cuda"
    assert device_of(None) is None and device_of("garbage") is None and device_of("") is None
