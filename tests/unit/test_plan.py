"""Launch planning over injected hardware facts (the real NVML path is exercised below too)."""

from __future__ import annotations

import pytest

from vllm_companion.engine.planning.architectures import arch_of
from vllm_companion.engine.planning.candidates import smaller_model
from vllm_companion.engine.planning.hardware import Gpu, read_gpus
from vllm_companion.engine.planning.memory import fit
from vllm_companion.engine.planning.plan import CPU_MODEL, plan_launch


def gpu(name: str, gb: float, cc: tuple[int, int] = (8, 9), index: int = 0) -> Gpu:
    return Gpu(index, name, int(gb * 1024), int(gb * 1024) - 300, cc, "560.35")


def used(name: str, total_mib: int, used_mib: int, cc: tuple[int, int] = (8, 9), index: int = 0) -> Gpu:
    return Gpu(index, name, total_mib, total_mib - used_mib, cc, "560.35")


LAPTOP = "NVIDIA GeForce RTX 4060 Laptop GPU"


@pytest.mark.parametrize(
    ("gpus", "model", "quant", "util", "max_len", "tp"),
    [
        # The 8 GB laptop with 0.3 / 0.9 / 1.8 GB already held by a desktop, a browser, a game. With
        # 1.8 GB held the calibrated arithmetic would fit 7B AWQ on 0.47 GiB of KV cache; MIN_MARGIN
        # (no calibration point below 24 GB) keeps 3B AWQ at 4,096 tokens there.
        ([used(LAPTOP, 8188, 300)], "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "awq", 0.90, 4096, 1),
        ([used(LAPTOP, 8188, 900)], "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "awq", 0.85, 4096, 1),
        ([used(LAPTOP, 8188, 1800)], "Qwen/Qwen2.5-Coder-3B-Instruct-AWQ", "awq", 0.74, 4096, 1),
        ([used("NVIDIA GeForce RTX 3060", 12288, 400, (8, 6))], "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "awq",
         0.92, 4096, 1),
        ([used("NVIDIA GeForce RTX 4090", 24564, 500)], "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "awq", 0.92, 4096, 1),
        ([used("NVIDIA A100-PCIE-40GB", 40960, 400, (8, 0))], "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "awq",
         0.92, 8192, 1),
        ([used("NVIDIA A100-SXM4-80GB", 81920, 400, (8, 0))], "Qwen/Qwen2.5-Coder-32B-Instruct", None,
         0.92, 16384, 1),
        ([used("NVIDIA H100 80GB HBM3", 81559, 500, (9, 0))], "Qwen/Qwen2.5-Coder-32B-Instruct", None,
         0.92, 16384, 1),
        ([used("NVIDIA H200", 143771, 500, (9, 0))], "Qwen/Qwen2.5-Coder-32B-Instruct", None, 0.92, 16384, 1),
        ([used("NVIDIA A100-SXM4-80GB", 81920, 400, (8, 0), 0), used("NVIDIA A100-SXM4-80GB", 81920, 400, (8, 0), 1)],
         "Qwen/Qwen2.5-Coder-32B-Instruct", None, 0.92, 16384, 2),
    ],
    ids=["4060-0.3gb-used", "4060-0.9gb-used", "4060-1.8gb-used", "3060-12gb", "4090-24gb", "a100-40gb",
         "a100-80gb", "h100-80gb", "h200-141gb", "2x-a100-80gb"],
)
def test_plans_fit_by_arithmetic(gpus: list[Gpu], model: str, quant: str | None, util: float, max_len: int,
                                 tp: int) -> None:
    plan = plan_launch(gpus)
    assert (plan.engine, plan.device, plan.model, plan.quantization) == ("vllm", "cuda", model, quant)
    assert (plan.gpu_memory_utilization, plan.max_model_len, plan.tensor_parallel) == (util, max_len, tp)
    assert plan.prefix_caching and gpus[0].name in plan.reason
    # the plan fits in what is free, by its own arithmetic, with two full contexts of KV cache
    arch = arch_of(plan.model)
    assert arch is not None
    result = fit(arch, plan.quantization, gpus[0].total_mb, util, max_len, eager=plan.enforce_eager, tensor_parallel=tp,
                 max_num_seqs=plan.max_num_seqs)
    assert gpus[0].total_mb * util <= gpus[0].free_mb - 256
    assert result.kv > 0 and result.tokens >= 2 * max_len
    assert f"{result.tokens:,} tokens" in plan.arithmetic


def test_no_gpu_is_the_cpu_profile() -> None:
    plan = plan_launch([])
    assert (plan.engine, plan.device, plan.model, plan.enforce_eager) == ("vllm", "cpu", CPU_MODEL, True)
    assert "no NVIDIA GPU" in plan.reason
    assert plan_launch([], {"kind": "llamacpp"}).engine == "llamacpp"


def test_small_card_is_eager_and_old_card_gets_fp16_without_awq() -> None:
    assert plan_launch([gpu("RTX 4060", 8)]).enforce_eager
    old = plan_launch([gpu("Tesla V100", 16, (7, 0))])
    assert old.quantization is None and old.dtype == "float16"


def test_too_small_gpu_falls_back_to_cpu() -> None:
    plan = plan_launch([gpu("GeForce GT 1030", 2, (6, 1))])
    assert plan.device == "cpu" and "too small" in plan.reason


def test_every_field_can_be_overridden() -> None:
    plan = plan_launch([gpu("RTX 4060", 8)], {"model": "TheBloke/deepseek-coder-6.7B-instruct-AWQ",
                                               "gpuMemoryUtilization": 0.8, "maxModelLen": 2048, "maxNumSeqs": 2,
                                               "enforceEager": False})
    assert plan.model == plan.served_name == "TheBloke/deepseek-coder-6.7B-instruct-AWQ"
    assert (plan.gpu_memory_utilization, plan.max_model_len, plan.max_num_seqs) == (0.8, 2048, 2)
    assert not plan.enforce_eager and "overridden" in plan.reason
    assert plan_launch([gpu("RTX 4090", 24)], {"device": "cpu"}).device == "cpu"


def test_smaller_model_chain_ends() -> None:
    plan = plan_launch([gpu("RTX 4060", 8)])
    chain = []
    while plan is not None:
        chain.append(plan.model)
        plan = smaller_model(plan)
    assert chain[-1] == "Qwen/Qwen2.5-Coder-1.5B-Instruct-AWQ" and len(chain) == 3


def test_real_nvml_path_without_a_gpu_is_clean() -> None:
    assert read_gpus() == []  # no NVIDIA driver here (CI and dev machines): no exception, no GPU
