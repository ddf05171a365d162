"""Which model answers next-edit requests: a next-edit model beside the completion model, or the
completion model itself with the generic prompt (issue 22, "Engine, plans, scheduling").

A trained next-edit model beats a larger instruct model at the task (Sweep's benchmark: Sweep
1.5B 67.8 %, Qwen2.5-Coder-7B 55.6 %; https://blog.sweep.dev/posts/oss-next-edit), so where the
card has room the plan serves one in a **second vLLM process**. vLLM's
``--gpu-memory-utilization`` is a per-instance share ("if you have two vLLM instances running on
the same GPU, you can set the GPU memory utilization to 0.5 for each instance", vLLM's engine
arguments), so the two shares come from the one share the free memory allows (memory.py's
``utilization_for``):

    completion share + next-edit share + SECOND_PROCESS_MIB / card  <=  the single plan's share

The next-edit share is the least (in steps of 0.01) whose memory.fit holds ``NE_CONCURRENCY``
prompts of ``NE_CONTEXT`` tokens, run eager (vLLM's GGUF path; no CUDA graphs to reserve). The
completion model is planned again in what is left, from its own candidate down, and the pair is
taken only when the completion plan stays as good (``keeps``): the same model, and its context
unchanged, or at least ``KEEP_CONTEXT`` tokens when it was longer. Otherwise the next, smaller
next-edit model is tried, then none: the completion model serves next-edit with the generic
prompt (nextedit/formats.py). Tensor-parallel plans keep one process (the split of a second one
over the GPUs is not planned).

Sweep next-edit ships as GGUF only (Q8_0 files in sweepai/sweep-next-edit-1.5B and -0.5B); vLLM
loads it as ``repo:Q8_0`` with the base model's tokenizer (vLLM docs, "GGUF"; newer releases need
the vllm-gguf-plugin). The shape is Qwen2.5-Coder's of the same size (architectures.py).
engine/paired.py launches the pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .architectures import arch_of
from .memory import Fit, fit

if TYPE_CHECKING:
    from .plan import LaunchPlan

NE_CONTEXT = 4096  # the Sweep prompt: a file, recent changes, a 21-line window, the answer (<= 1,024 tokens)
NE_CONCURRENCY = 2  # the running request and the one a newer request is cancelling
NE_SEQS = 2
SECOND_PROCESS_MIB = 512  # the second process's CUDA context: made before vLLM's snapshot, outside its share
# What the launcher does with the choice (engine/launch.py, engine/paired.py).
LAUNCHED = ("launched with the engine as two processes: the completion one at the share above, then the next-edit "
            "one, each on a loopback port of its own (a fleet keeps one process per replica)")
KEEP_CONTEXT = 8192  # a longer completion context may shrink to this, never below (chats rarely need more)


@dataclass(frozen=True)
class NextEditModel:
    repo: str  # the Hugging Face repository, also the served name
    quant: str  # the GGUF file's quantization: vLLM loads "repo:quant"
    base: str  # the base model: tokenizer and shape (architectures.py)
    note: str

    @property
    def weights(self) -> str:
        return f"{self.repo}:{self.quant}"


# Best first (Sweep's benchmark, overall: 1.5B 67.8 %, 0.5B 61.3 %).
NEXT_EDIT_MODELS: tuple[NextEditModel, ...] = (
    NextEditModel("sweepai/sweep-next-edit-1.5B", "Q8_0", "Qwen/Qwen2.5-Coder-1.5B", "Sweep next-edit 1.5B (Q8_0)"),
    NextEditModel("sweepai/sweep-next-edit-0.5B", "Q8_0", "Qwen/Qwen2.5-Coder-0.5B", "Sweep next-edit 0.5B (Q8_0)"),
)


@dataclass(frozen=True)
class NextEditPlan:
    """The plan's next-edit choice: ``model`` None is the completion model with the generic prompt."""

    reason: str
    model: str | None = None  # served name (the repository)
    weights: str | None = None  # what vLLM loads
    tokenizer: str | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int = NE_CONTEXT
    max_num_seqs: int = NE_SEQS
    arithmetic: str = ""
    completion_share: float | None = None  # the completion process's share beside it
    completion_context: int | None = None  # and its max-model-len there

    def describe(self) -> str:
        if self.model is None:
            return "the completion model, generic prompt"
        return (f"{self.model} in a second vLLM process, gpu-memory-utilization {self.gpu_memory_utilization:.2f}, "
                f"max-model-len {self.max_model_len}, eager; the completion process then at "
                f"{self.completion_share:.2f}, max-model-len {self.completion_context}")


def generic(reason: str) -> NextEditPlan:
    return NextEditPlan(reason=reason)


def share_for(model: NextEditModel, total_mib: int) -> tuple[float, Fit] | None:
    """The least share (0.01 steps) of a ``total_mib`` card at which ``model`` holds its prompts."""
    arch = arch_of(model.base)
    if arch is None:
        return None
    for hundredths in range(1, 93):
        result = fit(arch, model.quant.lower(), total_mib, hundredths / 100, NE_CONTEXT, eager=True,
                     max_num_seqs=NE_SEQS)
        if result.tokens >= NE_CONTEXT * NE_CONCURRENCY:
            return hundredths / 100, result
    return None


def keeps(before: LaunchPlan, after: LaunchPlan | None) -> str | None:
    """None when ``after`` is as good a completion plan as ``before`` (module doc), else why not."""
    if after is None:
        return "the completion model would not fit beside it"
    if after.model != before.model:
        return f"the completion model would step down to {after.model}"
    if after.max_model_len < min(before.max_model_len, KEEP_CONTEXT):
        return f"the completion context would shrink to {after.max_model_len:,} tokens"
    return None


def beside(main: LaunchPlan, total_mib: int, shrunk: Callable[[float], LaunchPlan | None]) -> LaunchPlan:
    """``main`` with its next-edit choice: the first next-edit model that fits beside it (the
    completion plan from ``shrunk(share)``: its candidate or a smaller one at that share), else none.
    ``main`` itself is unchanged: it is what one process runs; ``paired`` gives the pair's."""
    if main.tensor_parallel > 1 or main.pipeline_parallel > 1 or main.gpu_memory_utilization is None:
        return replace(main, next_edit=generic("a plan over several GPUs keeps one process"))
    reserve = SECOND_PROCESS_MIB / total_mib
    why_not = []
    for model in NEXT_EDIT_MODELS:
        need = share_for(model, total_mib)
        left = math.floor((main.gpu_memory_utilization - reserve - need[0]) * 100 + 1e-9) / 100 if need else 0.0
        after = shrunk(left) if left > 0 else None
        verdict = keeps(main, after)
        if need is not None and after is not None and verdict is None:
            return replace(main, next_edit=_served(model, need, main, after, reserve))
        why_not.append(f"{model.note}: {verdict}")
    return replace(main, next_edit=generic("no room beside the completion model: " + "; ".join(why_not)))


def _served(model: NextEditModel, need: tuple[float, Fit], main: LaunchPlan, after: LaunchPlan,
            reserve: float) -> NextEditPlan:
    share, result = need
    assert after.gpu_memory_utilization is not None and main.gpu_memory_utilization is not None
    sums = (f"shares: completion {after.gpu_memory_utilization:.2f} + next-edit {share:.2f} + its CUDA context "
            f"{reserve:.3f} <= {main.gpu_memory_utilization:.2f}")
    return NextEditPlan(
        reason=f"{model.note} beside {after.model} (keeps its model, context {after.max_model_len:,})",
        model=model.repo, weights=model.weights, tokenizer=model.base, gpu_memory_utilization=share,
        arithmetic=f"{sums}; next-edit: {result.explain()}; completion: {after.arithmetic}",
        completion_share=after.gpu_memory_utilization, completion_context=after.max_model_len,
    )


def paired(main: LaunchPlan) -> LaunchPlan:
    """The completion process's plan when the next-edit model runs beside it (its smaller share
    and context, and ``reserved``: the rest of the single plan's share, the next-edit process's,
    which the completion process's step-downs must leave it: diagnose.py); ``main`` itself when
    the plan has no next-edit model."""
    choice = main.next_edit
    if choice is None or choice.completion_share is None or choice.completion_context is None:
        return main
    kept = round((main.gpu_memory_utilization or choice.completion_share) - choice.completion_share, 2)
    return replace(main, gpu_memory_utilization=choice.completion_share, max_model_len=choice.completion_context,
                   reserved=kept)


def next_edit_lines(plan: LaunchPlan) -> list[tuple[str, str]]:
    """What ``plan`` and ``doctor`` print of the choice: (label, text) pairs."""
    choice = plan.next_edit
    if choice is None:
        why = ("CPU engine: the model is asked only with nextEdit.model on (nextedit/asking.py)"
               if plan.device == "cpu" else "set by hand or after a step-down")
        return [("next-edit", f"the completion model, generic prompt ({why})")]
    lines = [("next-edit", choice.describe()), ("next-edit why", choice.reason)]
    if choice.model is not None:
        lines.append(("next-edit launch", LAUNCHED))
    return lines + ([("next-edit arithmetic", choice.arithmetic)] if choice.arithmetic else [])
