"""The engine and the model for a machine without a usable GPU, chosen from what its CPU can do.

Measured on two 2-core AMD EPYC machines (``shared/README.md``, docs/models.md "Without a GPU"):
without AVX-512 the vLLM CPU build took 22.4 s for a cold 938-token prompt where llama.cpp took
5.8 s (32 warm tokens: 3.2 s against 1.1-1.4 s); with it, vLLM did 1,205 tokens in 1.56 s. vLLM's
CPU guide lists ``avx512f`` as recommended
(https://docs.vllm.ai/en/v0.12.0/getting_started/installation/cpu/). So: the user's
``engine.kind`` wins; a GGUF named in ``engine.model`` means llama.cpp (vLLM's CPU build cannot
load GGUF); rates measured on this machine (``doctor --calibrate``, engine/calibrate.py) pick the
faster engine; else vLLM with AVX-512 and the memory it needs, llama.cpp when installed, and
vLLM with a warning last. The model: a FIM-trained code model found on disk (engine/cpu_local.py)
when its estimated time for a cold ``PROMPT_TOKENS`` prompt and ``OUT_TOKENS`` out stays within
the completion cap and it fits in memory; else SmolLM2-135M (a chat model: no FIM), the offline
default. Pure: every decision is tested with injected facts (tests/unit/test_cpu_plan.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .architectures import arch_of
from .hardware import Cpu
from .memory import GIB, kv_bytes_per_token, weight_bytes

REFERENCE = "smollm2-135m-instruct"  # what rates are measured with (the model every install has)
REFERENCE_PARAMS_B = 0.135
PROMPT_TOKENS = 1000  # a newly opened file: no prefix cache yet
OUT_TOKENS = 32
BUDGET_MS = 5000  # completion.timeoutMs's default
HEADROOM_GIB = 0.5  # left to the editor and the desktop
VLLM_RUNTIME_GIB = 2.1  # vLLM CPU beside bf16 weights and its 1 GiB KV space: 3.1-3.3 GB measured in all
LLAMACPP_RUNTIME_GIB = 0.15  # 275 MB measured with the 93 MB SmolLM2 GGUF and 2,048 tokens of context
CONTEXT = 2048


@dataclass(frozen=True)
class Rates:
    """Tokens a second for the reference model: prompt (cold, 1 token out) and generation."""

    prefill_tps: float
    decode_tps: float
    source: str

    def seconds(self, params_b: float, prompt: int = PROMPT_TOKENS, out: int = OUT_TOKENS) -> float:
        """Estimated time for ``prompt`` + ``out`` tokens on a model of ``params_b``: both phases
        scale with the parameters a token passes through (an estimate: calibrate to check)."""
        scale = params_b / REFERENCE_PARAMS_B
        return prompt * scale / self.prefill_tps + out * scale / self.decode_tps


# SmolLM2-135M on 2 cores (shared/README.md); prefill scales with the cores, decode does not.
PRIORS: dict[tuple[str, bool], Rates] = {
    ("vllm", True): Rates(772.0, 53.0, "prior: vLLM CPU 0.32, 2 cores, 1,205 tokens in 1.56 s, 51-55 tok/s"),
    ("vllm", False): Rates(42.0, 15.0, "prior: vLLM CPU 0.32, 2-core EPYC without AVX-512, 938 tokens in 22.4 s"),
    ("llamacpp", True): Rates(350.0, 75.0, "prior: llama.cpp 0.3.36, 2 cores, ~350 tok/s prompt, 74-80 tok/s"),
    ("llamacpp", False): Rates(162.0, 28.0, "prior: llama.cpp 0.3.36, 2-core EPYC without AVX-512, 938 tokens "
                                            "in 5.8 s"),
}


@dataclass(frozen=True)
class LocalModel:
    """A code model on this machine: a safetensors folder (vLLM) or a GGUF file (llama.cpp)."""

    name: str  # the hub id it came from: the served name, so the prompt family resolves
    path: str
    engine: str  # "vllm" | "llamacpp"
    size_bytes: int = 0  # the GGUF's size (its weights); 0 for a folder (bf16 by arithmetic)


@dataclass(frozen=True)
class CpuFacts:
    cpu: Cpu
    installed: frozenset[str] = frozenset()  # engines importable: "vllm", "llamacpp"
    models: tuple[LocalModel, ...] = ()  # FIM code models found on disk
    measured: dict[str, Rates] = field(default_factory=dict)  # this machine's, from doctor --calibrate


@dataclass(frozen=True)
class CpuChoice:
    engine: str
    model: LocalModel | None  # None: SmolLM2 (the offline default)
    why_engine: str
    why_model: str
    warning: str = ""  # a choice that will be slow
    hint: str = ""  # where a calibration would decide better


def rates_for(facts: CpuFacts, engine: str) -> Rates:
    """This machine's measured rates, else the prior for its kind of CPU scaled to its cores."""
    if engine in facts.measured:
        return facts.measured[engine]
    prior = PRIORS[(engine, facts.cpu.avx512)]
    return Rates(prior.prefill_tps * min(facts.cpu.cores, 16) / 2, prior.decode_tps, prior.source)


def need_gib(engine: str, model: LocalModel | None) -> float:
    """Memory the engine takes with ``model`` (None: SmolLM2), by the arithmetic of engine/planning/memory.py."""
    arch = arch_of(model.name if model else REFERENCE)
    if arch is None:
        return float("inf")
    if engine == "vllm":  # bf16 weights + VLLM_CPU_KVCACHE_SPACE=1 (engine/command.py)
        return VLLM_RUNTIME_GIB + weight_bytes(arch, None) / GIB + 1.0
    weights = model.size_bytes if model and model.size_bytes else weight_bytes(arch, "int4")
    return LLAMACPP_RUNTIME_GIB + (weights + kv_bytes_per_token(arch) * CONTEXT) / GIB


def _vllm_fits(f: CpuFacts) -> bool:
    return f.cpu.mem_gib >= need_gib("vllm", None) + HEADROOM_GIB


def _why_not_vllm(f: CpuFacts) -> str:
    if "vllm" not in f.installed:
        return "vLLM's CPU build is not installed"
    if not f.cpu.avx512:
        return "no AVX-512 (avx512f): vLLM's CPU build was 4x slower than llama.cpp on a cold prompt there"
    return f"{f.cpu.mem_gib:.1f} GiB available, vLLM's CPU build needs {need_gib('vllm', None) + HEADROOM_GIB:.1f}"


Rule = tuple[Callable[[CpuFacts], bool], str, Callable[[CpuFacts], str]]
# In order; the first rule that holds names the engine (after the user's kind, a GGUF, measurements).
ENGINE_RULES: tuple[Rule, ...] = (
    (lambda f: f.cpu.avx512 and _vllm_fits(f) and ("vllm" in f.installed or "llamacpp" not in f.installed),
     "vllm", lambda f: "AVX-512 (avx512f), which vLLM's CPU guide recommends, and "
                       f"{f.cpu.mem_gib:.1f} GiB available: vLLM's CPU build"),
    (lambda f: "llamacpp" in f.installed,
     "llamacpp", lambda f: f"{_why_not_vllm(f)}: llama.cpp"),
    (lambda f: True,
     "vllm", lambda f: f"{_why_not_vllm(f)} and llama.cpp is not installed: vLLM's CPU build"),
)


def choose_engine(facts: CpuFacts, kind: str | None = None, model: str | None = None) -> tuple[str, str]:
    """The engine and why; ``kind`` and ``model`` are what the user set (``engine.kind``/``model``)."""
    if kind:
        return kind, f"engine.kind {kind} (your setting)"
    if model and model.lower().endswith(".gguf"):
        return "llamacpp", "engine.model is a GGUF file, which vLLM's CPU build cannot load: llama.cpp"
    both = [e for e in ("vllm", "llamacpp") if e in facts.installed and e in facts.measured]
    if len(both) == 2:
        fastest = min(both, key=lambda e: facts.measured[e].seconds(REFERENCE_PARAMS_B))
        times = ", ".join(f"{e} {facts.measured[e].seconds(REFERENCE_PARAMS_B):.1f} s" for e in both)
        return fastest, f"measured here (doctor --calibrate), {PROMPT_TOKENS:,}+{OUT_TOKENS} tokens: {times}"
    _, engine, why = next(rule for rule in ENGINE_RULES if rule[0](facts))
    return engine, why(facts)


def choose_model(facts: CpuFacts, engine: str, budget_ms: int = BUDGET_MS) -> tuple[LocalModel | None, str]:
    """The best code model found for ``engine`` that runs within the budget and the memory, and why
    (or why none): larger first, a base model before an instruct one."""
    found = sorted((m for m in facts.models if m.engine == engine and arch_of(m.name)),
                   key=lambda m: (-_params(m), "instruct" in m.name.lower(), m.name))
    if not found:
        where = "a GGUF" if engine == "llamacpp" else "a safetensors snapshot"
        return None, (f"SmolLM2-135M (no FIM training): no FIM code model on disk for {engine} ({where} of "
                      "Qwen2.5-Coder-0.5B or 1.5B in the Hugging Face cache, or engine.model)")
    rates, skipped = rates_for(facts, engine), []
    for model in found:
        secs, need = rates.seconds(_params(model)), need_gib(engine, model)
        if secs * 1000 > budget_ms:
            skipped.append(f"{model.name} {secs:.1f} s > {budget_ms / 1000:.1f} s")
        elif need + HEADROOM_GIB > facts.cpu.mem_gib:
            skipped.append(f"{model.name} needs {need + HEADROOM_GIB:.1f} GiB, {facts.cpu.mem_gib:.1f} available")
        else:
            return model, (f"{model.name}, FIM-trained: {PROMPT_TOKENS:,}+{OUT_TOKENS} tokens in an estimated "
                           f"{secs:.1f} s (cap {budget_ms / 1000:.1f} s; {rates.source})")
    return None, (f"SmolLM2-135M (no FIM training): {PROMPT_TOKENS:,}+{OUT_TOKENS} tokens estimated "
                  f"({rates.source}): {'; '.join(skipped)}")


def _params(model: LocalModel) -> float:
    arch = arch_of(model.name)
    return arch.params_b if arch else float("inf")


def choose(facts: CpuFacts, overrides: dict[str, object], budget_ms: int = BUDGET_MS) -> CpuChoice:
    """Engine, then model, for this CPU; ``overrides`` are the user's engine settings."""
    kind, model = overrides.get("kind"), overrides.get("model")
    engine, why_engine = choose_engine(facts, kind if isinstance(kind, str) else None,
                                       model if isinstance(model, str) else None)
    picked, why_model = choose_model(facts, engine, budget_ms)
    if isinstance(model, str):
        picked, why_model = None, f"engine.model {model} (your setting)"
    slow = engine == "vllm" and not facts.cpu.avx512
    warning = ("vLLM's CPU build without AVX-512 is slow (22.4 s for a cold 938-token prompt measured): "
               "install llama.cpp (scripts/setup.sh --llamacpp)") if slow else ""
    unmeasured = facts.installed - facts.measured.keys()
    unsure = not kind and bool(unmeasured) and (len(facts.installed) == 2 or facts.cpu.cores < 4)
    hint = "not obvious here: `vllm-companion doctor --calibrate` measures each installed engine" if unsure else ""
    return CpuChoice(engine, picked, why_engine, why_model, warning, hint)
