"""The memory arithmetic behind every launch plan: what a model needs, what a card leaves.

vLLM's own accounting (its start-up log prints each term): it may use ``total x utilization`` of
each GPU, and refuses to start when that is more than the memory free at start
("Free memory on device ... is less than desired GPU memory utilization"). From that budget it
takes the weights, the non-torch memory (CUDA context, NCCL), the activation peak of a profiling
run over ``max_num_batched_tokens``, and (unless ``--enforce-eager``) the CUDA graphs; the rest is
the KV cache, in blocks of 16 tokens. Terms, per GPU (tensor parallelism splits weights and KV):

- weights: parameters x 2 bytes (bf16/fp16); AWQ/GPTQ keep embeddings and LM head in 16 bits and
  store the rest in 4 bits plus a 16-bit scale and a 4-bit zero per group of 128 (4.16 bits);
- KV bytes per token: 2 (K and V) x layers x KV heads x head size x 2 bytes;
- activation: a 0.25 GiB workspace plus batched tokens x (2 x hidden + 2 x intermediate) x 2 bytes;
- non-torch: 0.5 GiB; CUDA graphs: 0.5 GiB.

Checked against vLLM's figures (tests/unit/test_memory.py): the CPU build's 46,592 KV tokens for
SmolLM2-135M in 1 GiB (exact), Llama-3.1-8B on an RTX 3090 at 0.90 (vLLM issue #10517: 3.81 GiB,
1,952 blocks), Qwen2.5-7B-AWQ weights on an RTX 4060 (vLLM issue #13882: 5.20 GiB).
"""

from __future__ import annotations

from dataclasses import dataclass

from .architectures import Arch

GIB = 1 << 30
BLOCK_TOKENS = 16
KV_BYTES = 2  # bf16/fp16 KV cache
QUANT_BITS = 4 + 16 / 128 + 4 / 128  # 4-bit weights, fp16 scale and 4-bit zero per group of 128
NON_TORCH_GIB = 0.5  # CUDA context and NCCL (vLLM logs 0.03-0.5 GiB)
CUDA_GRAPHS_GIB = 0.5  # graph capture (vLLM logs "took 0.2-1.0 GiB"); 0 with --enforce-eager
WORKSPACE_GIB = 0.25
DESKTOP_HEADROOM_MIB = 256  # what a desktop and browser may still take after we start


def weight_bytes(arch: Arch, quantization: str | None) -> int:
    params = arch.params_b * 1e9
    if quantization in ("awq", "gptq", "int4"):
        embeddings = arch.embedding_params
        return int(embeddings * 2 + (params - embeddings) * QUANT_BITS / 8)
    return int(params * 2)


def kv_bytes_per_token(arch: Arch) -> int:
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * KV_BYTES


def activation_bytes(arch: Arch, batched_tokens: int) -> int:
    return int(WORKSPACE_GIB * GIB + batched_tokens * (2 * arch.hidden + 2 * arch.intermediate) * 2)


def kv_tokens(kv_bytes: int, per_token: int) -> int:
    """Whole blocks of ``BLOCK_TOKENS`` that ``kv_bytes`` holds (vLLM allocates in blocks)."""
    return max(0, kv_bytes) // (per_token * BLOCK_TOKENS) * BLOCK_TOKENS


@dataclass(frozen=True)
class Fit:
    """One configuration's arithmetic, per GPU, in bytes (and what it buys)."""

    utilization: float
    budget: int  # total x utilization
    weights: int
    activation: int
    non_torch: int
    graphs: int
    kv: int  # what is left for the KV cache (negative: does not fit)
    kv_per_token: int
    tokens: int  # KV cache size in tokens, over all GPUs' shards
    max_model_len: int

    @property
    def concurrency(self) -> float:
        return self.tokens / self.max_model_len if self.max_model_len else 0.0

    def explain(self) -> str:
        def gib(n: int) -> str:
            return f"{n / GIB:.2f} GiB"

        return (f"{gib(self.budget)} usable (utilization {self.utilization:.2f}) - weights {gib(self.weights)} "
                f"- activation {gib(self.activation)} - non-torch {gib(self.non_torch)} - CUDA graphs "
                f"{gib(self.graphs)} = KV cache {gib(self.kv)}; {self.kv_per_token:,} bytes per token -> "
                f"{self.tokens:,} tokens, {self.concurrency:.1f} requests of {self.max_model_len:,} tokens")


def fit(
    arch: Arch,
    quantization: str | None,
    total_mib: int,
    utilization: float,
    max_model_len: int,
    batched_tokens: int = 2048,
    eager: bool = False,
    tensor_parallel: int = 1,
) -> Fit:
    """The arithmetic for one GPU of ``total_mib`` (each of ``tensor_parallel`` GPUs alike)."""
    budget = int(total_mib * (1 << 20) * utilization)
    weights = weight_bytes(arch, quantization) // tensor_parallel
    activation = activation_bytes(arch, batched_tokens)
    non_torch = int(NON_TORCH_GIB * GIB)
    graphs = 0 if eager else int(CUDA_GRAPHS_GIB * GIB)
    kv = budget - weights - activation - non_torch - graphs
    per_token = kv_bytes_per_token(arch) // tensor_parallel
    tokens = kv_tokens(kv, per_token)
    return Fit(utilization, budget, weights, activation, non_torch, graphs, kv, per_token, tokens, max_model_len)


def utilization_for(total_mib: int, free_mib: int, ceiling: float = 0.92) -> float:
    """The highest ``--gpu-memory-utilization`` vLLM's start-up check accepts with what is free,
    leaving ``DESKTOP_HEADROOM_MIB`` for a desktop that grows; at most ``ceiling``."""
    usable = max(0, free_mib - DESKTOP_HEADROOM_MIB) / max(1, total_mib)
    return round(min(ceiling, usable) - 0.005, 2)


def cpu_kv_tokens(arch: Arch, kv_space_gib: float = 1.0) -> int:
    """The vLLM CPU build: ``VLLM_CPU_KVCACHE_SPACE`` GiB, all of it KV cache."""
    return kv_tokens(int(kv_space_gib * GIB), kv_bytes_per_token(arch))
