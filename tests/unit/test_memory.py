"""The memory arithmetic against vLLM's own figures (engine/planning/memory.py)."""

from __future__ import annotations

import pytest

from vllm_companion.engine.planning.architectures import ARCHS, arch_of, quantization_of
from vllm_companion.engine.planning.memory import (
    GIB,
    cpu_kv_tokens,
    fit,
    kv_bytes_per_token,
    utilization_for,
    weight_bytes,
)


def test_the_cpu_build_figure_is_reproduced_exactly() -> None:
    """vLLM CPU 0.32, SmolLM2-135M, VLLM_CPU_KVCACHE_SPACE=1: "KV cache size: 46,592 tokens" and
    "Maximum concurrency for 2,048 tokens per request: 22.75x" (measured here, docs/models.md)."""
    arch = arch_of("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert arch is not None and kv_bytes_per_token(arch) == 23_040
    assert cpu_kv_tokens(arch) == 46_592
    assert cpu_kv_tokens(arch) / 2048 == 22.75


def test_llama_8b_on_a_3090_within_15_percent() -> None:
    """vLLM issue #10517: RTX 3090 (23.58 GiB), utilization 0.90, max-model-len 20000 (profiled at
    20000 batched tokens): weights 14.99 GiB, KV cache 3.81 GiB, 1,952 blocks = 31,232 tokens."""
    arch = arch_of("meta-llama/Llama-3.1-8B-Instruct")
    assert arch is not None
    result = fit(arch, None, int(23.58 * 1024), 0.90, 20000, batched_tokens=20000, eager=True)
    assert abs(result.weights / GIB - 14.99) / 14.99 < 0.01
    assert abs(result.tokens - 31_232) / 31_232 < 0.15
    assert abs(result.kv / GIB - 3.81) / 3.81 < 0.15


def test_awq_weights_of_qwen_7b_on_a_4060_within_15_percent() -> None:
    """vLLM issue #13882: RTX 4060 8 GB, Qwen2.5-7B AWQ: "Loading model weights took 5.2032 GB"."""
    arch = arch_of("Qwen/Qwen2.5-7B-Instruct-AWQ")
    assert arch is not None
    assert abs(weight_bytes(arch, "awq") / GIB - 5.2032) / 5.2032 < 0.15


@pytest.mark.parametrize(("model", "params_b"), [
    ("Qwen/Qwen2.5-Coder-7B-Instruct", 7.62), ("deepseek-ai/deepseek-coder-6.7b-instruct", 6.74),
    ("meta-llama/Llama-3.1-70B-Instruct", 70.55), ("bigcode/starcoder2-15b", 15.96),
])
def test_bf16_weights_are_two_bytes_a_parameter(model: str, params_b: float) -> None:
    arch = arch_of(model)
    assert arch is not None
    assert weight_bytes(arch, None) == int(params_b * 1e9 * 2)


def test_every_guide_model_is_known_and_consistent() -> None:
    for arch in ARCHS:
        assert arch.heads % arch.kv_heads == 0, arch.name
        assert arch.source.startswith("https://huggingface.co/"), arch.name
        # attention + MLP + embeddings roughly add up to the published count (within 25 %)
        attn = arch.layers * arch.hidden * arch.head_dim * (2 * arch.heads + 2 * arch.kv_heads)
        mlp = arch.layers * (3 if arch.gated_mlp else 2) * arch.hidden * arch.intermediate
        estimate = (attn + mlp + arch.embedding_params) / 1e9
        assert abs(estimate - arch.params_b) / arch.params_b < 0.25, (arch.name, estimate)
    assert arch_of("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ") is arch_of("qwen2.5-14b")
    assert arch_of("TheBloke/deepseek-coder-6.7B-instruct-AWQ") is arch_of("deepseek-coder-6.7b")
    assert quantization_of("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", None) == "awq"
    assert arch_of("some/unknown-model") is None


def test_utilization_comes_from_what_is_free() -> None:
    """vLLM refuses to start when total x utilization is more than what is free."""
    assert utilization_for(8188, 8188 - 900) == 0.85
    assert utilization_for(8188, 8188 - 1800) == 0.74
    assert utilization_for(81559, 81000) == 0.92
    for used in (300, 900, 1800, 4000):
        util = utilization_for(8188, 8188 - used)
        assert 8188 * util <= 8188 - used - 256


def test_what_if_planner_prints_the_arithmetic() -> None:
    from vllm_companion.engine.planning.whatif import BadSpec, parse_gpu, what_if

    laptop = parse_gpu("RTX 4060 Laptop:8188:900")
    assert (laptop.total_mb, laptop.free_mb, laptop.compute_capability) == (8188, 7288, (8, 9))
    assert parse_gpu("Tesla V100:16384:0:7.0").compute_capability == (7, 0)
    lines = what_if([laptop])
    assert "plan: vllm on cuda: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ" in "\n".join(lines)
    # 1.61 GiB left after weights, 0.26 GiB activation, 0.14 GiB non-torch, less the margin (256 MiB
    # floor: more than 3 % of 1.21 GiB)
    assert any(line.startswith("arithmetic:") and "17,952 tokens" in line for line in lines)
    pinned = "\n".join(what_if([laptop], "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", 4096))
    assert "does not fit" in pinned and "weights 9.29 GiB" in pinned
    a100 = parse_gpu("A100:81920:0:8.0", 0)
    big = "\n".join(what_if([a100, parse_gpu("A100:81920:0:8.0", 1)], "meta-llama/Llama-3.1-70B-Instruct", 16384))
    assert "weights 65.70 GiB" in big and "does not fit" not in big  # 70B bf16 split over two A100 80 GB
    assert "KV cache size" not in big and "46,592" in "\n".join(what_if([]))
    for bad in ("bad", "x:0:0", "x:100:200", "x:a:b"):
        try:
            parse_gpu(bad)
        except BadSpec:
            continue
        raise AssertionError(bad)


def test_doctor_shows_what_others_hold() -> None:
    from vllm_companion.doctor import held_by_others
    from vllm_companion.engine.planning.hardware import Gpu

    gpu = Gpu(0, "RTX 4060 Laptop", 8188, 7288, (8, 9), "560", ((4242, "firefox", 600), (17, "Xorg", 300)))
    assert held_by_others(gpu) == ["held by other programs: 900 MiB", "firefox (pid 4242): 600 MiB",
                                   "Xorg (pid 17): 300 MiB"]
