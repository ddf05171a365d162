"""The memory arithmetic (engine/planning/memory.py) against published vLLM start-up logs.

Each point is a log read in its source (docs/models.md, "Calibration", has the table): the model,
the card (the total torch reports), ``--gpu-memory-utilization``, ``--max-model-len``, tensor
parallelism, the settings vLLM profiled with (``max_num_batched_tokens``, ``max_num_seqs``), and
what vLLM printed: "Available KV cache memory" (GiB, per GPU) and, where given, "GPU KV cache size"
(tokens). The fitted KV figure must be within 10 % of each, and never above it by more than the
margin a plan keeps (so a plan never counts on more KV cache than vLLM gives).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vllm_companion.engine.planning.architectures import arch_of, quantization_of
from vllm_companion.engine.planning.memory import GIB, MARGIN, V0, V1_0_10, V1_0_11, Accounting, Fit, fit

A100_80 = 79.25  # GiB: 0.25 x total is what 0.25 -> 0.50 added (5.01 -> 24.83 GiB, 12.02 -> 31.83 GiB)
A100_40 = 39.39  # GiB as torch reports an A100 40 GB (not printed in the source's log)
H100 = 79.18  # GiB, llm-d's H100 ("H100 GPUs (79.18 GiB total memory)")
RTX_3090 = 23.58  # GiB, "total_gpu_memory=23.58GiB" (vLLM issue #10517)
L40S = 44.31  # GiB, "total_gpu_memory (44.31GiB)" beside an NVIDIA_L40S MoE config (stored file id 57044493590)
A40 = 44.45  # GiB: its log's four terms add up to 40.01 GiB = 0.90 x 44.45 (nvidia-smi: 46,068 MiB)
RTX_4070_LAPTOP = 7.65  # GiB, "total_gpu_memory (7.65GiB)", the 8 GB laptop card
T4 = 14.56  # GiB, "total_gpu_memory (14.56GiB)"

DENNIS = "https://github.com/dennislee22/vLLM-benchmarking/blob/main/log/"
LLMD = "https://github.com/llm-d/llm-d-benchmark/blob/main/config_explorer/empirical-vllm-memory-results.md"
ISSUE_10517 = "https://github.com/vllm-project/vllm/issues/10517"
# Public files the code index holds without naming their repository: its id (read_file) and a quote.
STORED = "stored public GitHub file, code-index id "
L40S_LAB = STORED + "10876549642 ('Lab 1 - vLLM OpenAI Server: Llama 3 70B Instruct (AWQ) on NVIDIA L40S (TP=2)')"
A40_BLOG = STORED + "39735714735 (two A40s: 'vllm serve ./Qwen2.5-72B-Instruct-AWQ --tensor-parallel-size 2')"
LAPTOP_RAG = STORED + "3594054945 (a RAG tutorial: 'I have a NVIDIA GeForce RTX 4070 - 8GB VRAM on this laptop')"
T4_NOTEBOOK = STORED + "55740737586 (Qwen/Qwen2.5-1.5B-Instruct, gpu_memory_utilization 0.50, a T4)"


@dataclass(frozen=True)
class Point:
    model: str
    gpu: str
    total_gib: float
    utilization: float
    max_model_len: int
    tp: int
    accounting: Accounting
    batched: int  # max_num_batched_tokens vLLM profiled with
    seqs: int  # max_num_seqs
    kv_gib: float  # "Available KV cache memory", per GPU
    kv_tokens: int | None  # "GPU KV cache size" (None: not in the source)
    source: str
    across_hosts: bool = False
    quantization: str | None = None  # as given to vLLM where the model id does not say it (GGUF)

    def fit(self) -> Fit:
        arch = arch_of(self.model)
        assert arch is not None, self.model
        return fit(arch, quantization_of(self.model, self.quantization), int(self.total_gib * 1024), self.utilization,
                   self.max_model_len, batched_tokens=self.batched, tensor_parallel=self.tp,
                   max_num_seqs=self.seqs, accounting=self.accounting, across_hosts=self.across_hosts)


QWEN2_7B = "Qwen/Qwen2-7B-Instruct"
POINTS = (
    # vLLM 0.10.1.1 (V1), vllm serve: chunked prefill at 2,048 batched tokens, 256 sequences.
    Point(QWEN2_7B, "A100 80 GB", A100_80, 0.25, 16384, 1, V1_0_10, 2048, 256, 5.01, 93_872,
          DENNIS + "vllm-7B-1gpuA10080GB-0.25GRAM.log"),
    Point(QWEN2_7B, "A100 80 GB", A100_80, 0.50, 16384, 1, V1_0_10, 2048, 256, 24.83, 464_848,
          DENNIS + "vllm-7B-1gpuA10080GB-0.5GRAM.log"),
    Point(QWEN2_7B, "2 x A100 80 GB", A100_80, 0.25, 16384, 2, V1_0_10, 2048, 256, 12.02, 450_192,
          DENNIS + "vllm-7B-2gpuA10080GB-0.25GRAM-same-node.log"),
    Point(QWEN2_7B, "2 x A100 80 GB", A100_80, 0.50, 16384, 2, V1_0_10, 2048, 256, 31.83, 1_192_160,
          DENNIS + "vllm-7B-2gpuA10080GB-0.5GRAM-same-node.log"),
    Point(QWEN2_7B, "2 x A100 40 GB, two hosts (Ray)", A100_40, 0.50, 16384, 2, V1_0_10, 2048, 256, 11.03,
          412_944, DENNIS + "vllm-7B-2gpuA10040GB-0.5GRAM-diff-nodes.log", across_hosts=True),
    # Later V1 on an H100 (llm-d): vllm serve's H100 defaults, 8,192 batched tokens, 1,024 sequences.
    Point("Qwen/Qwen3-0.6B", "H100 80 GB", H100, 0.90, 16000, 1, V1_0_11, 8192, 1024, 64.45, None, LLMD),
    Point("Qwen/Qwen3-0.6B", "H100 80 GB", H100, 0.90, 32000, 1, V1_0_11, 8192, 1024, 64.45, None, LLMD),
    Point("meta-llama/Llama-3.1-8B-Instruct", "H100 80 GB", H100, 0.90, 16000, 1, V1_0_11, 8192, 1024, 51.38,
          None, LLMD),
    Point("Qwen/Qwen3-32B", "H100 80 GB", H100, 0.90, 16000, 1, V1_0_11, 8192, 1024, 4.45, None, LLMD),
    Point("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", "2 x H100 80 GB", H100, 0.90, 16000, 2, V1_0_11, 8192,
          1024, 32.0, None, LLMD),
    # V0 (its "Memory profiling results" line; no chunked prefill: the profile runs max-model-len tokens).
    Point("meta-llama/Llama-3.1-8B-Instruct", "RTX 3090 24 GB", RTX_3090, 0.90, 20000, 1, V0, 20000, 256, 3.81,
          31_232, ISSUE_10517),
    Point("meta-llama/Llama-3.1-8B-Instruct", "RTX 3090 24 GB", RTX_3090, 0.90, 29000, 1, V0, 29000, 256, 2.89,
          23_648, ISSUE_10517),
    # AWQ (Marlin kernels). vLLM 0.16.0 (V1), vllm serve's defaults on an L40S: 2,048 / 256.
    Point("TechxGenus/Meta-Llama-3-70B-Instruct-AWQ", "2 x L40S 48 GB", L40S, 0.90, 8192, 2, V1_0_11, 2048, 256,
          20.16, 132_128, L40S_LAB),
    # V0 0.7.2 without chunked prefill (the profile runs 32,768 tokens): the forward pass dominates.
    Point("Qwen/Qwen2.5-72B-Instruct-AWQ", "2 x A40 48 GB", A40, 0.90, 32768, 2, V0, 32768, 256, 14.63, None,
          A40_BLOG),
    # Cards under 24 GB. vLLM 0.8 (V0 engine, GGUF), --enforce-eager, 1,395 blocks of 16.
    Point("Llama-3.2-3B-Instruct-Q8_0.gguf", "RTX 4070 Laptop 8 GB", RTX_4070_LAPTOP, 0.90, 10000, 1, V0, 10000, 256,
          2.38, 22_320, LAPTOP_RAG, quantization="q8_0"),
    # vLLM 0.7 (V0), 5,519 blocks of 16.
    Point("Qwen/Qwen2.5-1.5B-Instruct", "T4 16 GB", T4, 0.50, 32768, 1, V0, 32768, 256, 2.36, 88_304, T4_NOTEBOOK),
)
IDS = [f"{p.model.split('/')[-1]}-{p.gpu.replace(' ', '')}-{p.utilization}-{p.max_model_len}" for p in POINTS]


@pytest.mark.parametrize("point", POINTS, ids=IDS)
def test_fitted_kv_cache_is_within_ten_percent_of_what_vllm_reported(point: Point) -> None:
    result = point.fit()
    assert abs(result.kv / GIB - point.kv_gib) / point.kv_gib < 0.10, result.explain()
    if point.kv_tokens is not None:
        assert abs(result.fitted_tokens - point.kv_tokens) / point.kv_tokens < 0.10, result.explain()


@pytest.mark.parametrize("point", POINTS, ids=IDS)
def test_a_plan_never_counts_on_more_kv_cache_than_vllm_gave(point: Point) -> None:
    """The fitted figure may be above vLLM's by less than the margin; after it, never above."""
    result = point.fit()
    reported = point.kv_gib * GIB
    assert result.kv - reported < MARGIN * reported, result.explain()
    assert result.kv - result.margin <= reported * 1.005, result.explain()  # 0.005: the log's 2 decimals
    if point.kv_tokens is not None:
        assert result.tokens <= point.kv_tokens, result.explain()


def test_the_points_span_what_the_plans_cover() -> None:
    """At least three card sizes (one under 24 GB), one GPU to several, 0.6B to 70B, AWQ (Marlin)."""
    sizes = {round(p.total_gib) for p in POINTS}
    params = [a.params_b for p in POINTS if (a := arch_of(p.model)) is not None]
    assert len(POINTS) >= 12 and len(sizes) >= 3 and min(sizes) < 16
    assert min(params) < 1 and max(params) > 69
    assert any(quantization_of(p.model, p.quantization) == "awq" for p in POINTS) and any(p.tp > 1 for p in POINTS)
