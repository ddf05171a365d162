"""Engine failure lines -> diagnoses -> step-downs."""

from __future__ import annotations

from dataclasses import replace

from vllm_companion.engine.diagnose import diagnose, next_plan
from vllm_companion.engine.hardware import Gpu
from vllm_companion.engine.plan import plan_launch

PLAN = plan_launch([Gpu(0, "RTX 4060", 8192, 7800, (8, 9))])


def test_kv_cache_raises_utilization_then_halves_length_then_smaller_model() -> None:
    d = diagnose(["INFO loading", "ValueError: No available memory for the cache blocks. Try increasing ..."])
    assert d.kind == "kv-cache"
    low = replace(PLAN, gpu_memory_utilization=0.5)
    step1, why1 = next_plan(low, d)
    assert step1 is not None and step1.gpu_memory_utilization == 0.9 and "0.50 -> 0.90" in why1
    step2, _ = next_plan(step1, d)
    assert step2 is not None and step2.max_model_len == PLAN.max_model_len // 2
    tiny = replace(step2, max_model_len=512)
    step3, why3 = next_plan(tiny, d)
    assert step3 is not None and step3.model == "Qwen/Qwen2.5-Coder-3B-Instruct-AWQ" and "smaller" in why3


def test_kv_too_small_uses_what_the_cache_holds() -> None:
    d = diagnose(["The model's max seq len (4096) is larger than the maximum number of tokens that can be "
                  "stored in KV cache (1500). Try increasing `gpu_memory_utilization`."])
    plan, _ = next_plan(PLAN, d)
    assert d.kind == "kv-too-small" and plan is not None and plan.max_model_len == 1280


def test_cuda_oom_lowers_length_and_sequences() -> None:
    d = diagnose(["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB"])
    plan, _ = next_plan(PLAN, d)
    assert d.kind == "cuda-oom" and plan is not None
    assert (plan.max_model_len, plan.max_num_seqs) == (2048, 2)


def test_unrecoverable_failures_say_what_to_do() -> None:
    gated = diagnose(["huggingface_hub.errors.GatedRepoError: 401 Client Error"])
    assert gated.kind == "auth" and not gated.retry and "huggingface-cli login" in gated.message
    missing = diagnose(["ModuleNotFoundError: No module named 'vllm'"], PLAN)
    assert missing.kind == "missing-engine" and "pip install 'vllm-companion[gpu]'" in missing.message
    assert next_plan(PLAN, missing)[0] is None


def test_port_in_use_and_plain_crash_restart_as_is() -> None:
    assert next_plan(PLAN, diagnose(["OSError: [Errno 98] Address already in use"]))[0] == PLAN
    crash = diagnose(["Traceback...", "RuntimeError: boom"])
    assert crash.kind == "crash" and "RuntimeError: boom" in crash.message
