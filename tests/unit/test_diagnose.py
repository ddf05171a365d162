"""Engine failure lines -> diagnoses -> step-downs."""

from __future__ import annotations

from dataclasses import replace

from vllm_companion.engine.planning.diagnose import diagnose, next_plan
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.plan import plan_launch

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


def test_free_memory_check_replans_by_arithmetic() -> None:
    """vLLM: "Free memory on device (6.92/8.0 GiB) on startup is less than desired GPU memory
    utilization (0.9, 7.2 GiB)": the utilization follows what is free; with less free, a smaller
    model; with almost nothing free, stop and say why."""
    from vllm_companion.engine.planning.hardware import Gpu
    from vllm_companion.engine.planning.plan import plan_launch

    gpus = [Gpu(0, "RTX 4060 Laptop", 8188, 8188 - 300, (8, 9))]
    plan = plan_launch(gpus)
    line = ("ValueError: Free memory on device (6.92/8.0 GiB) on startup is less than desired GPU memory "
            "utilization (0.9, 7.2 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.")
    diagnosis = diagnose([line])
    assert diagnosis.kind == "free-memory" and (diagnosis.free_gib, diagnosis.total_gib) == (6.92, 8.0)
    again, why = next_plan(plan, diagnosis, gpus)
    assert again is not None and again.gpu_memory_utilization == 0.83 and again.model == plan.model
    assert "0.90 -> 0.83" in why and again.step == plan.step + 1
    tight = diagnose([line.replace("6.92/8.0", "5.90/8.0")])
    smaller, why = next_plan(plan, tight, gpus)
    assert smaller is not None and "3B" in smaller.model and "smaller model" in why
    none, why = next_plan(plan, diagnose([line.replace("6.92/8.0", "1.20/8.0")]), gpus)
    assert none is None and "close other programs" in why


def test_graph_capture_oom_goes_eager_then_smaller() -> None:
    from dataclasses import replace

    from vllm_companion.engine.planning.hardware import Gpu
    from vllm_companion.engine.planning.plan import plan_launch

    plan = replace(plan_launch([Gpu(0, "RTX 4060 Laptop", 8188, 7888, (8, 9))]), enforce_eager=False)
    tail = ["Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):  40%|####      | 27/67",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB."]
    assert diagnose(tail).kind == "graph-capture"
    eager, why = next_plan(plan, diagnose(tail))
    assert eager is not None and eager.enforce_eager and "eager" in why
    smaller, _ = next_plan(eager, diagnose(tail))
    assert smaller is not None and smaller.model != plan.model
    assert diagnose(["torch.OutOfMemoryError: CUDA out of memory."]).kind == "cuda-oom"
