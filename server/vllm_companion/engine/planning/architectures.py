"""Model architectures as data: what the memory arithmetic (engine/planning/memory.py) needs per model.

One record per base model, from its ``config.json`` on the Hugging Face hub (the ``source``);
fine-tunes and instruct variants share the base's shape, and a quantized repository (``-AWQ``,
``-GPTQ``) is its base with 4-bit linear layers. ``params_b`` is the published parameter count,
embeddings included. Lookup is by model id with the package's one rule (model_ids.py:
case-insensitive, ``_`` as ``-``, longest pattern first), as for the prompt families.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...model_ids import lookup


@dataclass(frozen=True)
class Arch:
    name: str
    match: tuple[str, ...]  # lower-case substrings of a model id
    params_b: float  # billions, embeddings included
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    vocab: int
    tied_embeddings: bool
    max_context: int
    source: str
    gated_mlp: bool = True  # gate, up and down projections (SwiGLU); StarCoder2 has two

    @property
    def embedding_params(self) -> float:
        """Input embeddings plus the LM head (once when they are tied): kept in 16 bits by AWQ/GPTQ."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)


def _hf(repo: str) -> str:
    return f"https://huggingface.co/{repo}/blob/main/config.json"


ARCHS: tuple[Arch, ...] = (
    # Qwen2.5 and Qwen2.5-Coder share each size's shape.
    Arch("qwen2.5-0.5b", ("qwen2.5-0.5b", "qwen2.5-coder-0.5b"), 0.49, 24, 14, 2, 64, 896, 4864, 151936, True,
         32768, _hf("Qwen/Qwen2.5-Coder-0.5B-Instruct")),
    Arch("qwen2.5-1.5b", ("qwen2.5-1.5b", "qwen2.5-coder-1.5b"), 1.54, 28, 12, 2, 128, 1536, 8960, 151936, True,
         32768, _hf("Qwen/Qwen2.5-Coder-1.5B-Instruct")),
    Arch("qwen2.5-3b", ("qwen2.5-3b", "qwen2.5-coder-3b"), 3.09, 36, 16, 2, 128, 2048, 11008, 151936, True,
         32768, _hf("Qwen/Qwen2.5-Coder-3B-Instruct")),
    # Qwen2-7B has Qwen2.5-7B's config.json numbers (28 layers, 4 KV heads, 3584/18944, 152,064).
    Arch("qwen2.5-7b", ("qwen2.5-7b", "qwen2.5-coder-7b", "qwen2-7b"), 7.62, 28, 28, 4, 128, 3584, 18944, 152064, False,
         32768, _hf("Qwen/Qwen2.5-Coder-7B-Instruct")),
    Arch("qwen2.5-14b", ("qwen2.5-14b", "qwen2.5-coder-14b"), 14.77, 48, 40, 8, 128, 5120, 13824, 152064, False,
         32768, _hf("Qwen/Qwen2.5-Coder-14B-Instruct")),
    Arch("qwen2.5-32b", ("qwen2.5-32b", "qwen2.5-coder-32b"), 32.76, 64, 40, 8, 128, 5120, 27648, 152064, False,
         32768, _hf("Qwen/Qwen2.5-Coder-32B-Instruct")),
    # 72B: a calibration point (Qwen2.5-72B-Instruct-AWQ on two A40s); no Coder model of this size.
    Arch("qwen2.5-72b", ("qwen2.5-72b",), 72.71, 80, 64, 8, 128, 8192, 29568, 152064, False,
         32768, _hf("Qwen/Qwen2.5-72B-Instruct")),
    # Qwen3: head_dim 128 is given in the config (not hidden / heads). 32B: 32.76B parameters is
    # what vLLM's "Model loading took 61.03 GiB" implies (llm-d/llm-d-benchmark).
    Arch("qwen3-0.6b", ("qwen3-0.6b",), 0.596, 28, 16, 8, 128, 1024, 3072, 151936, True,
         40960, _hf("Qwen/Qwen3-0.6B")),
    Arch("qwen3-32b", ("qwen3-32b",), 32.76, 64, 64, 8, 128, 5120, 25600, 151936, False,
         40960, _hf("Qwen/Qwen3-32B")),
    Arch("deepseek-coder-1.3b", ("deepseek-coder-1.3b",), 1.35, 24, 16, 16, 128, 2048, 5504, 32256, False,
         16384, _hf("deepseek-ai/deepseek-coder-1.3b-instruct")),
    Arch("deepseek-coder-6.7b", ("deepseek-coder-6.7b",), 6.74, 32, 32, 32, 128, 4096, 11008, 32256, False,
         16384, _hf("deepseek-ai/deepseek-coder-6.7b-instruct")),
    Arch("deepseek-coder-33b", ("deepseek-coder-33b",), 33.34, 62, 56, 8, 128, 7168, 19200, 32256, False,
         16384, _hf("deepseek-ai/deepseek-coder-33b-instruct")),
    Arch("codeqwen1.5-7b", ("codeqwen1.5-7b",), 7.25, 32, 32, 4, 128, 4096, 13440, 92416, False,
         65536, _hf("Qwen/CodeQwen1.5-7B-Chat")),
    Arch("codellama-7b", ("codellama-7b",), 6.74, 32, 32, 32, 128, 4096, 11008, 32016, False,
         16384, _hf("codellama/CodeLlama-7b-Instruct-hf")),
    Arch("codellama-13b", ("codellama-13b",), 13.02, 40, 40, 40, 128, 5120, 13824, 32016, False,
         16384, _hf("codellama/CodeLlama-13b-Instruct-hf")),
    Arch("codellama-34b", ("codellama-34b",), 33.74, 48, 64, 8, 128, 8192, 22016, 32000, False,
         16384, _hf("codellama/CodeLlama-34b-Instruct-hf")),
    Arch("starcoder2-3b", ("starcoder2-3b",), 3.03, 30, 24, 2, 128, 3072, 12288, 49152, True,
         16384, _hf("bigcode/starcoder2-3b"), gated_mlp=False),
    Arch("starcoder2-7b", ("starcoder2-7b",), 7.17, 32, 36, 4, 128, 4608, 18432, 49152, True,
         16384, _hf("bigcode/starcoder2-7b"), gated_mlp=False),
    Arch("starcoder2-15b", ("starcoder2-15b",), 15.96, 40, 48, 4, 128, 6144, 24576, 49152, False,
         16384, _hf("bigcode/starcoder2-15b"), gated_mlp=False),
    Arch("codestral-22b", ("codestral-22b", "codestral"), 22.25, 56, 48, 8, 128, 6144, 16384, 32768, False,
         32768, _hf("mistralai/Codestral-22B-v0.1")),
    Arch("mistral-7b", ("mistral-7b",), 7.25, 32, 32, 8, 128, 4096, 14336, 32768, False,
         32768, _hf("mistralai/Mistral-7B-Instruct-v0.3")),
    Arch("llama-3.2-1b", ("llama-3.2-1b",), 1.24, 16, 32, 8, 64, 2048, 8192, 128256, True,
         131072, _hf("meta-llama/Llama-3.2-1B-Instruct")),
    Arch("llama-3.2-3b", ("llama-3.2-3b",), 3.21, 28, 24, 8, 128, 3072, 8192, 128256, True,
         131072, _hf("meta-llama/Llama-3.2-3B-Instruct")),
    Arch("llama-3.1-8b", ("llama-3.1-8b", "llama-3-8b", "meta-llama-3-8b"), 8.03, 32, 32, 8, 128, 4096, 14336,
         128256, False, 131072, _hf("meta-llama/Llama-3.1-8B-Instruct")),
    Arch("llama-3.1-70b", ("llama-3.1-70b", "llama-3.3-70b", "llama-3-70b", "meta-llama-3-70b"), 70.55, 80, 64, 8,
         128, 8192, 28672, 128256, False, 131072, _hf("meta-llama/Llama-3.1-70B-Instruct")),
    Arch("phi-3.5-mini", ("phi-3.5-mini", "phi-3-mini"), 3.82, 32, 32, 32, 96, 3072, 8192, 32064, False,
         131072, _hf("microsoft/Phi-3.5-mini-instruct")),
    Arch("smollm2-135m", ("smollm2-135m",), 0.135, 30, 9, 3, 64, 576, 1536, 49152, True,
         8192, _hf("HuggingFaceTB/SmolLM2-135M-Instruct")),
    Arch("smollm2-360m", ("smollm2-360m",), 0.362, 32, 15, 5, 64, 960, 2560, 49152, True,
         8192, _hf("HuggingFaceTB/SmolLM2-360M-Instruct")),
    Arch("smollm2-1.7b", ("smollm2-1.7b",), 1.71, 24, 32, 32, 64, 2048, 8192, 49152, True,
         8192, _hf("HuggingFaceTB/SmolLM2-1.7B-Instruct")),
)
QUANTIZED = ("awq", "gptq", "int4", "fp8")


def arch_of(model_id: str) -> Arch | None:
    """The architecture a model id names (an -AWQ repo is its base's), or None if unknown."""
    return lookup(ARCHS, model_id)


def quantization_of(model_id: str, given: str | None) -> str | None:
    """``--quantization`` as given, else what the repository name says (``-AWQ``, ``-GPTQ``)."""
    if given:
        return given.lower()
    lowered = model_id.lower()
    return next((q for q in QUANTIZED if q in lowered), None)
