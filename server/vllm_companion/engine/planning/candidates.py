"""The GPU models the planner chooses from, best first, and whether one fits by arithmetic.

``CANDIDATES`` is the project's preference order (the best coding model first, docs/models.md);
whether a candidate fits is not a table but the memory arithmetic of memory.py over the model's
architecture (architectures.py): the context is the longest, from the candidate's preferred one
halving down to ``MIN_CONTEXT``, whose KV cache holds ``MIN_CONCURRENCY`` requests at once
(``longest_fit``). plan.py turns the first fit into a ``LaunchPlan``; cluster.py, whatif.py and
alternatives.py read the same list; ``smaller_model`` is diagnose.py's last step-down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .architectures import arch_of
from .memory import Fit, fit, weight_bytes

if TYPE_CHECKING:
    from .plan import LaunchPlan


@dataclass(frozen=True)
class Candidate:
    model: str
    quantization: str | None
    max_model_len: int  # preferred context; halved (not below MIN_CONTEXT) until it fits
    max_num_seqs: int
    note: str


# Best first. Instruct models: on one small GPU a single model serves FIM and chat (Qwen2.5-Coder
# instruct models keep their FIM tokens). bf16 variants serve cards without AWQ kernels (pre-Turing).
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("Qwen/Qwen2.5-Coder-32B-Instruct", None, 16384, 32, "32B in bf16"),
    Candidate("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "awq", 8192, 16, "32B AWQ"),
    Candidate("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", "awq", 8192, 8, "14B AWQ"),
    Candidate("Qwen/Qwen2.5-Coder-7B-Instruct", None, 8192, 8, "7B in bf16"),
    Candidate("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "awq", 4096, 4, "7B AWQ"),
    Candidate("Qwen/Qwen2.5-Coder-3B-Instruct-AWQ", "awq", 4096, 4, "3B AWQ"),
    Candidate("Qwen/Qwen2.5-Coder-3B-Instruct", None, 4096, 4, "3B in bf16"),
    Candidate("Qwen/Qwen2.5-Coder-1.5B-Instruct-AWQ", "awq", 2048, 2, "1.5B AWQ"),
    Candidate("Qwen/Qwen2.5-Coder-1.5B-Instruct", None, 2048, 2, "1.5B in bf16"),
)
MIN_CONTEXT = 2048
MIN_CONCURRENCY = 2  # the KV cache holds a completion and a chat at full context
SMALL_CARD_MIB = 9 * 1024  # below: eager (CUDA graphs cost memory; capture fails on 8 GB at 0.8)
SMALL_CARD_CEILING = 0.90  # 8 GB laptops: reported stable up to 0.86-0.90 (vLLM #13882 and others)
SMALLER_8GB = "TheBloke/deepseek-coder-6.7B-instruct-AWQ"  # the 8 GB alternative, by hand


def longest_fit(cand: Candidate, total_mib: int, util: float, eager: bool, tp: int) -> tuple[int, Fit] | None:
    """The longest context (from the preferred one, halving) at which ``cand`` fits, with its Fit."""
    arch = arch_of(cand.model)
    if arch is None:
        return None
    length = min(cand.max_model_len, arch.max_context)
    while length >= MIN_CONTEXT:
        result = fit(arch, cand.quantization, total_mib, util, length, eager=eager, tensor_parallel=tp,
                     max_num_seqs=cand.max_num_seqs)  # the plan passes --max-num-seqs: the sampler profiles that many
        if result.tokens >= length * MIN_CONCURRENCY:
            return length, result
        length //= 2
    return None


def smaller_model(plan: LaunchPlan) -> LaunchPlan | None:
    """The next candidate down (same device, same settings otherwise), or None at the bottom."""
    names = [c.model for c in CANDIDATES]
    if plan.device != "cuda" or plan.model not in names:
        return None
    current = weight_bytes(arch, plan.quantization) if (arch := arch_of(plan.model)) else 1 << 62
    for index, cand in enumerate(CANDIDATES):
        if index <= names.index(plan.model):
            continue
        smaller = (a := arch_of(cand.model)) is not None and weight_bytes(a, cand.quantization) < current
        if smaller and (cand.quantization != "awq" or plan.quantization == "awq"):
            return replace(
                plan, model=cand.model, served_name=cand.model, quantization=cand.quantization,
                max_model_len=cand.max_model_len, max_num_seqs=cand.max_num_seqs, candidate=index,
                step=plan.step + 1, reason=f"stepped down to {cand.model}",
            )
    return None
