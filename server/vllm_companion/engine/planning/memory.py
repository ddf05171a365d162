"""The memory arithmetic behind every launch plan: what a model needs, what a card leaves.

vLLM's own accounting (its start-up log prints each term): it may use ``total x utilization`` of
each GPU and refuses to start when that is more than the memory free at start. From that budget it
takes the weights, the activation peak of a profiling run and the non-torch memory; the rest is
the KV cache ("Available KV cache memory: X GiB", then "GPU KV cache size: N tokens"). Terms, per
GPU (tensor parallelism splits weights, KV and the MLP):

- weights (exact from the config): parameters x 2 bytes; AWQ/GPTQ keep embeddings and LM head in
  16 bits and store the rest in 4 bits plus a 16-bit scale and a 4-bit zero per group of 128; FP8
  keeps them in 16 bits and the rest in 8;
- KV bytes per token (exact): 2 (K and V) x layers x KV heads x head size x 2 bytes;
- activation peak (fitted): the larger of the model's forward pass over ``max_num_batched_tokens``
  (batched tokens x (3 x hidden + 3 x intermediate) x 2 bytes: the gate/up output, the activated
  half and the residual stream) and the dummy sampler run over ``max_num_seqs`` rows of logits
  (``logit_bytes`` x sequences x vocabulary) - the two run one after the other, so the peak is the
  larger, not the sum. Two terms of the forward pass come from how vLLM works, not a fit: with
  tensor parallelism the down projection's all-reduce returns a new tensor (one more hidden-sized
  output; the only TP point whose forward pass dominates confirms it), and
  vLLM 0.5-0.7's Marlin kernel (AWQ/GPTQ) allocated ``a_tmp``, a copy of its input (tokens x k),
  on every call, act-order or not - for the down projection k is the intermediate size (the A40
  Qwen2.5-72B-AWQ point: 5.66 GiB measured, 4.21 without the two terms, 5.61 with them);
- non-torch memory (fitted): what the profiling run adds outside torch (NCCL buffers with tensor
  parallelism, more across hosts);
- CUDA graphs (fitted): vLLM 0.8-0.20 captures them after sizing the KV cache, so they come on top
  of the budget; newer releases profile them and take them from it. The plan reserves them
  (``PLAN``) either way: they must fit on the card.

The fitted terms are calibrated against published start-up logs (docs/models.md, "Calibration";
tests/unit/test_calibration.py holds every point). A plan counts on the fitted KV figure minus
``MARGIN`` (the worst remaining overestimate, rounded up), so it never expects more KV cache than
vLLM gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from .architectures import Arch

GIB = 1 << 30
MIB = 1 << 20
BLOCK_TOKENS = 16
KV_BYTES = 2  # bf16/fp16 KV cache
QUANT_BITS = {"awq": 4 + 16 / 128 + 4 / 128, "gptq": 4 + 16 / 128 + 4 / 128, "int4": 4 + 16 / 128 + 4 / 128,
              "fp8": 8.0, "q8_0": 8.5}  # GGUF Q8_0: 32 int8 weights + an fp16 scale a block
# 7.62B Qwen2-7B: 14.25 GiB logged (dennislee22/vLLM-benchmarking); 70B FP8: 33.88 GiB per GPU at TP 2 (llm-d).
DESKTOP_HEADROOM_MIB = 256  # what a desktop and browser may still take after we start
# Over the 16 calibration points the fitted KV figure is at most 1.4 % above vLLM's (Llama-3.1-8B on
# an RTX 3090, V0, 23,968 tokens against 23,648). The points also fitted the constants, so the margin
# is twice that, rounded up: a plan counts on 3 % less KV cache than the fitted figure.
MARGIN = 0.03
# On small cards a few hundred MiB of CUDA context and driver differences are the whole KV cache. The
# two points under 24 GB (an 8 GB laptop, a T4) hold, but a native-Windows vLLM 0.19 log of 7B AWQ
# on a ~10 GiB card (total not printed) left 0.5-0.8 GiB that no term explains (docs/models.md):
# whatever the share, a plan does not count on the last 256 MiB either (the 8 GB laptop then keeps
# 3B AWQ at 4,096 tokens with 1.8 GB held instead of 7B AWQ on 0.47 GiB of KV cache).
MIN_MARGIN = 256 * MIB


@dataclass(frozen=True)
class Accounting:
    """One generation of vLLM's profiling, as the calibration points measured it."""

    name: str
    logit_bytes: float  # sampler peak per logit (max_num_seqs x vocabulary)
    non_torch_gib: float  # one GPU
    non_torch_tp_gib: float  # tensor parallel on one host (NCCL, custom all-reduce)
    non_torch_hosts_gib: float  # tensor parallel across hosts (Ray, NCCL over the network)
    graphs_in_budget: bool  # CUDA graphs taken from the budget before the KV cache is sized
    graphs_gib: float = 0.65  # "Graph capturing finished ... took 0.50 / 0.65 GiB" (0.10.1.1, 7B)
    marlin_a_tmp: bool = False  # the Marlin GEMM copies its input on every call (AWQ/GPTQ, 0.5-0.7)


# vLLM 0.8-0.10: Qwen2-7B on an A100 80 GB left 0.55 GiB between weights and KV cache at both 0.25
# and 0.50 utilization: the 0.26 GiB forward pass plus 0.13 non-torch leaves at most ~11.6 bytes a
# logit for 256 x 152,064 logits (three fp32 copies); 0.25 GiB non-torch at TP 2, 1.2 across hosts.
V1_0_10 = Accounting("vLLM 0.8-0.10", 11.6, 0.13, 0.26, 1.2, graphs_in_budget=False)
# Later V1 (the llm-d H100 logs print a CUDA-graph estimate and a --kv-cache-memory hint): an
# activation peak of 4.76-5.64 GiB for four models from 0.6B to 70B is 38.4-39.6 bytes a logit for
# 1,024 sequences (H100's default), whatever the model's size; non-torch 0.13 GiB, 0.55 at TP 2.
V1_0_11 = Accounting("vLLM 0.11+", 39.6, 0.14, 0.55, 1.2, graphs_in_budget=False)
# V0 (0.6-0.7): the forward pass dominates (max_num_batched_tokens = max-model-len without chunked
# prefill); non-torch 0.35 GiB with the CUDA context (vLLM issue #10517); the Marlin kernel of that
# era allocates ``a_tmp = torch::empty({size_m, size_k})`` unconditionally (csrc/quantization/
# gptq_marlin/gptq_marlin.cu; later kernels only with act-order, and no V1 point is forward-bound).
V0 = Accounting("vLLM 0.6-0.7 (V0)", 11.6, 0.35, 0.35, 1.2, graphs_in_budget=False, marlin_a_tmp=True)
# What a plan assumes of the vLLM it installs: the heaviest generation, graphs reserved; its Marlin
# kernel copies the input only for act-order GPTQ, which no planned model uses.
PLAN = Accounting("plan", 39.6, 0.14, 0.55, 1.2, graphs_in_budget=True)
MARLIN = ("awq", "gptq", "int4")  # 4-bit weights vLLM runs with its Marlin kernels


def weight_bytes(arch: Arch, quantization: str | None) -> int:
    params = arch.params_b * 1e9
    bits = QUANT_BITS.get(quantization or "")
    if bits is not None:
        embeddings = arch.embedding_params
        return int(embeddings * 2 + (params - embeddings) * bits / 8)
    return int(params * 2)


def kv_bytes_per_token(arch: Arch) -> int:
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * KV_BYTES


def activation_bytes(arch: Arch, batched_tokens: int, max_num_seqs: int = 256, tensor_parallel: int = 1,
                     accounting: Accounting = PLAN, quantization: str | None = None) -> int:
    """The profiling run's peak: the forward pass or the sampler, whichever is larger (the
    all-reduce's output with tensor parallelism, Marlin's input copy where that vLLM makes one)."""
    shard = arch.intermediate // tensor_parallel
    a_tmp = shard if accounting.marlin_a_tmp and quantization in MARLIN else 0
    all_reduce = arch.hidden if tensor_parallel > 1 else 0
    forward = batched_tokens * (3 * arch.hidden + 3 * shard + a_tmp + all_reduce) * 2
    sampler = accounting.logit_bytes * min(max_num_seqs, batched_tokens) * arch.vocab
    return int(max(forward, sampler))


def non_torch_bytes(accounting: Accounting, tensor_parallel: int, across_hosts: bool) -> int:
    if across_hosts:
        return int(accounting.non_torch_hosts_gib * GIB)
    return int((accounting.non_torch_gib if tensor_parallel == 1 else accounting.non_torch_tp_gib) * GIB)


def default_batched_tokens(total_mib: int) -> int:
    """vLLM's ``max_num_batched_tokens`` for ``vllm serve``: 8,192 on cards of 70 GiB and more
    (H100, H200; A100 keeps 2,048), else 2,048. The plan takes the larger where it may apply."""
    return 8192 if total_mib >= 70 * 1024 else 2048


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
    graphs: int  # reserved in the budget (0: eager, or a generation that captures them after)
    kv: int  # the fitted KV cache: what vLLM will report (negative: does not fit)
    margin: int  # what a plan does not count on (MARGIN of a positive kv, at least MIN_MARGIN)
    kv_per_token: int
    tokens: int  # KV tokens a plan counts on (kv - margin), over all GPUs' shards
    max_model_len: int

    @property
    def fitted_tokens(self) -> int:
        """The tokens vLLM is expected to report ("GPU KV cache size"), before the margin."""
        return kv_tokens(self.kv, self.kv_per_token)

    @property
    def concurrency(self) -> float:
        return self.tokens / self.max_model_len if self.max_model_len else 0.0

    def explain(self) -> str:
        def gib(n: int) -> str:
            return f"{n / GIB:.2f} GiB"

        return (f"{gib(self.budget)} usable (utilization {self.utilization:.2f}) - weights {gib(self.weights)} "
                f"- activation {gib(self.activation)} - non-torch {gib(self.non_torch)} - CUDA graphs "
                f"{gib(self.graphs)} = KV cache {gib(self.kv)}, less the margin "
                f"{gib(self.margin)}; {self.kv_per_token:,} bytes per token -> {self.tokens:,} tokens, "
                f"{self.concurrency:.1f} requests of {self.max_model_len:,} tokens")


def fit(
    arch: Arch,
    quantization: str | None,
    total_mib: int,
    utilization: float,
    max_model_len: int,
    batched_tokens: int | None = None,
    eager: bool = False,
    tensor_parallel: int = 1,
    max_num_seqs: int = 256,
    accounting: Accounting = PLAN,
    across_hosts: bool = False,
) -> Fit:
    """The arithmetic for one GPU of ``total_mib`` (each of ``tensor_parallel`` GPUs alike)."""
    budget = int(total_mib * MIB * utilization)
    weights = weight_bytes(arch, quantization) // tensor_parallel
    batched = batched_tokens or default_batched_tokens(total_mib)
    activation = activation_bytes(arch, batched, max_num_seqs, tensor_parallel, accounting, quantization)
    non_torch = non_torch_bytes(accounting, tensor_parallel, across_hosts)
    graphs = 0 if eager or not accounting.graphs_in_budget else int(accounting.graphs_gib * GIB)
    kv = budget - weights - activation - non_torch - graphs
    margin = min(max(0, kv), max(int(kv * MARGIN), MIN_MARGIN))
    per_token = kv_bytes_per_token(arch) // tensor_parallel
    tokens = kv_tokens(kv - margin, per_token)
    return Fit(utilization, budget, weights, activation, non_torch, graphs, kv, margin, per_token, tokens,
               max_model_len)


def utilization_for(total_mib: int, free_mib: int, ceiling: float = 0.92) -> float:
    """The highest ``--gpu-memory-utilization`` vLLM's start-up check accepts with what is free,
    leaving ``DESKTOP_HEADROOM_MIB`` for a desktop that grows; at most ``ceiling``."""
    usable = max(0, free_mib - DESKTOP_HEADROOM_MIB) / max(1, total_mib)
    return round(min(ceiling, usable) - 0.005, 2)


def cpu_kv_tokens(arch: Arch, kv_space_gib: float = 1.0) -> int:
    """The vLLM CPU build: ``VLLM_CPU_KVCACHE_SPACE`` GiB, all of it KV cache (exact, no margin:
    measured here, docs/models.md)."""
    return kv_tokens(int(kv_space_gib * GIB), kv_bytes_per_token(arch))
