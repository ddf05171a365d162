"""The CPU plan over injected facts (engine/planning/cpu.py): which engine and which model a machine without
a usable GPU gets, and why; the calibration's arithmetic with an injected clock (engine/calibrate.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from vllm_companion import cli_checks
from vllm_companion.doctor import cpu_lines
from vllm_companion.engine.calibrate import measure, read_calibration, write_calibration
from vllm_companion.engine.cpu_local import cached_code_models, parse_cpu_spec
from vllm_companion.engine.planning.cpu import CpuFacts, LocalModel, Rates
from vllm_companion.engine.planning.hardware import Cpu, Gpu, parse_cpuinfo, parse_meminfo
from vllm_companion.engine.planning.plan import CPU_MODEL, plan_launch

AVX2 = frozenset({"avx", "avx2", "fma"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512_vnni"}
BOTH = frozenset({"vllm", "llamacpp"})
CODER_05_GGUF = LocalModel("Qwen/Qwen2.5-Coder-0.5B", "/hf/qwen-0.5b-q8_0.gguf", "llamacpp", 531_000_000)
CODER_15_GGUF = LocalModel("Qwen/Qwen2.5-Coder-1.5B", "/hf/qwen-1.5b-q8_0.gguf", "llamacpp", 1_650_000_000)
CODER_05_HF = LocalModel("Qwen/Qwen2.5-Coder-0.5B", "/hf/snapshots/abc", "vllm")
FAST = {"vllm": Rates(4000, 200, "measured here"), "llamacpp": Rates(6000, 300, "measured here")}
# the 2-core EPYC without AVX-512 (shared/README.md): 938 tokens in 22.4 s / 5.8 s
SLOW = {"vllm": Rates(42, 15, "measured here"), "llamacpp": Rates(162, 28, "measured here")}


def facts(flags: frozenset[str] = AVX2, cores: int = 2, mem: float = 24.0, installed: frozenset[str] = BOTH,
          models: tuple[LocalModel, ...] = (), measured: dict[str, Rates] | None = None) -> CpuFacts:
    return CpuFacts(Cpu("AMD EPYC", flags, cores, mem), installed, models, measured or {})


@pytest.mark.parametrize(
    ("cpu", "overrides", "engine", "model", "why"),
    [
        (facts(AVX2), {}, "llamacpp", CPU_MODEL, "no AVX-512"),
        (facts(AVX512), {}, "vllm", CPU_MODEL, "AVX-512 (avx512f)"),
        (facts(AVX512, mem=2.5), {}, "llamacpp", CPU_MODEL, "2.5 GiB available"),
        (facts(AVX512, installed=frozenset({"llamacpp"})), {}, "llamacpp", CPU_MODEL, "not installed"),
        (facts(AVX2, installed=frozenset({"vllm"})), {}, "vllm", CPU_MODEL, "llama.cpp is not installed"),
        (facts(AVX2), {"kind": "vllm"}, "vllm", CPU_MODEL, "your setting"),
        (facts(AVX512), {"kind": "llamacpp"}, "llamacpp", CPU_MODEL, "your setting"),
        (facts(AVX512), {"model": "/m/coder.gguf"}, "llamacpp", "/m/coder.gguf", "GGUF"),
        (facts(AVX512, measured={"vllm": Rates(100, 20, "m"), "llamacpp": Rates(400, 60, "m")}), {},
         "llamacpp", CPU_MODEL, "measured"),
        (facts(AVX2, models=(CODER_05_GGUF,), measured=FAST), {}, "llamacpp", CODER_05_GGUF.path, "FIM-trained"),
        (facts(AVX2, models=(CODER_05_GGUF, CODER_15_GGUF), measured=FAST), {}, "llamacpp", CODER_15_GGUF.path,
         "Qwen/Qwen2.5-Coder-1.5B, FIM-trained"),
        (facts(AVX2, models=(CODER_05_GGUF,), measured=SLOW), {}, "llamacpp", CPU_MODEL, "s > 5.0 s"),
        (facts(AVX2, models=(CODER_05_GGUF,)), {}, "llamacpp", CPU_MODEL, "prior"),
        (facts(AVX512, models=(CODER_05_GGUF,), measured=FAST), {"kind": "vllm"}, "vllm", CPU_MODEL,
         "no FIM code model on disk for vllm"),
        (facts(AVX512, models=(CODER_05_HF,), cores=8), {}, "vllm", CODER_05_HF.path, "estimated 3.4 s"),
        (facts(AVX512, mem=4.0, models=(CODER_05_HF,), measured=FAST), {"kind": "vllm"}, "vllm", CPU_MODEL,
         "needs 4.5 GiB"),
        (facts(AVX2), {"kind": "llamacpp", "model": "/m/x.gguf"}, "llamacpp", "/m/x.gguf", "your setting"),
    ],
    ids=["avx2-llamacpp", "avx512-vllm", "avx512-little-memory", "avx512-no-vllm", "avx2-vllm-only-slow",
         "user-vllm-wins", "user-llamacpp-wins", "gguf-model-llamacpp", "measured-faster-wins",
         "code-model-fast", "larger-code-model-first", "code-model-too-slow", "code-model-prior-too-slow",
         "code-model-other-engine-only", "code-model-8-cores-prior", "code-model-no-memory", "user-model-wins"],
)
def test_cpu_plan_chooses_engine_and_model(cpu: CpuFacts, overrides: dict[str, Any], engine: str, model: str,
                                           why: str) -> None:
    plan = plan_launch([], overrides, cpu)
    assert (plan.engine, plan.device, plan.model) == (engine, "cpu", model)
    assert why in plan.reason
    assert plan.enforce_eager and plan.max_model_len == 2048


def test_a_code_model_is_served_under_its_hub_id_so_its_fim_family_resolves() -> None:
    from vllm_companion.prompts import resolve_family

    plan = plan_launch([], {}, facts(AVX2, models=(CODER_05_GGUF,), measured=FAST))
    assert plan.served_name == "Qwen/Qwen2.5-Coder-0.5B" and resolve_family(plan.served_name).is_fim
    assert "1,000+32 tokens in ~" in plan.arithmetic and "measured here" in plan.arithmetic


def test_vllm_without_avx512_warns_that_it_will_be_slow() -> None:
    plan = plan_launch([], {}, facts(AVX2, installed=frozenset({"vllm"})))
    assert "WARNING" in plan.reason and "scripts/setup.sh --llamacpp" in plan.reason
    assert "WARNING" not in plan_launch([], {}, facts(AVX512)).reason


def test_a_budget_from_the_completion_cap_decides_the_model() -> None:
    cpu = facts(AVX2, models=(CODER_05_GGUF,), measured={"llamacpp": Rates(1500, 100, "measured here")})
    assert plan_launch([], {}, cpu, budget_ms=5000).model == CODER_05_GGUF.path  # ~3.6 s
    assert plan_launch([], {}, cpu, budget_ms=3000).model == CPU_MODEL


def test_without_facts_the_cpu_profile_is_unchanged() -> None:
    plan = plan_launch([])
    assert (plan.engine, plan.model) == ("vllm", CPU_MODEL) and "CPU profile" in plan.reason


def test_a_gpu_too_small_falls_back_to_the_cpu_choice() -> None:
    plan = plan_launch([Gpu(0, "GeForce GT 1030", 2048, 1900, (6, 1))], {}, facts(AVX2))
    assert (plan.device, plan.engine) == ("cpu", "llamacpp") and "too small" in plan.reason


def test_doctor_says_why_no_code_model_and_shows_the_calibration() -> None:
    cpu = facts(AVX512, measured={"vllm": Rates(800, 50, "measured here 2026-12-06")})
    lines = dict(cpu_lines(cpu, {}, plan_launch([], {}, cpu)))
    assert "avx512f" in lines["CPU"] and "2 cores" in lines["CPU"]
    assert lines["CPU engine"].startswith("vllm: AVX-512")
    assert "no FIM code model on disk" in lines["CPU model"]
    assert "800 tok/s prompt" in lines["rates vllm"] and "measured here" in lines["rates vllm"]
    assert "prior" in lines["rates llamacpp"] and "calibrate" in lines["calibration"]


@pytest.mark.parametrize(
    ("spec", "ok"),
    [("flags=avx2;cores=2;mem_gib=24", True), ("flags=avx512f,avx2;cores=8;mem_gib=64;engines=vllm", True),
     ("cached=qwen2.5-coder-0.5b;rates=llamacpp:162/28", True), ("cores=two", False), ("cores=0", False),
     ("mem_gib=-1", False), ("engines=ollama", False), ("cached=gpt-4", False), ("rates=vllm:fast", False),
     ("speed=9", False), ("flags", False)],
)
def test_cpu_spec_is_validated(spec: str, ok: bool) -> None:
    if ok:
        assert isinstance(cli_checks.cpu_spec(spec), CpuFacts)
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            cli_checks.cpu_spec(spec)


def test_cpu_spec_gives_the_plan_its_facts() -> None:
    spec = parse_cpu_spec("flags=avx2;cores=2;mem_gib=24;cached=qwen2.5-coder-0.5b;rates=llamacpp:3000/150")
    plan = plan_launch([], {}, spec)
    assert plan.engine == "llamacpp" and plan.served_name == "Qwen/Qwen2.5-Coder-0.5B"


def test_cpuinfo_and_meminfo_parse() -> None:
    text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 avx512f\n\nprocessor\t: 1\nflags : x\n"
    assert parse_cpuinfo(text) == ("AMD EPYC 7B13", frozenset({"fpu", "avx2", "avx512f"}))
    assert parse_meminfo("MemTotal: 100 kB\nMemAvailable:   25165824 kB\n") == 24.0


async def test_calibration_rates_from_three_timed_requests() -> None:
    """Cold prompt 2.0 s (1,000 tokens), cached 0.1 s, 33 tokens out 0.5 s: 500 tok/s and 80 tok/s."""
    times, sent = iter([0.0, 2.0, 10.0, 10.1, 20.0, 20.5]), []

    async def post(body: dict[str, Any]) -> dict[str, Any]:
        sent.append(body)
        return {"usage": {"prompt_tokens": 1000, "completion_tokens": body["max_tokens"]}}

    rates = await measure(post, clock=lambda: next(times))
    assert (rates.prefill_tps, rates.decode_tps) == pytest.approx((500.0, 80.0))
    assert [b["max_tokens"] for b in sent] == [1, 1, 33] and all(b["ignore_eos"] for b in sent)


def test_calibration_cache_round_trip_is_private_and_per_machine(tmp_path: Path) -> None:
    cpu = Cpu("AMD EPYC", AVX512, 2, 20.0)
    path = write_calibration(cpu, {"llamacpp": Rates(350.0, 75.0, "x")}, tmp_path / "cal.json")
    assert path.stat().st_mode & 0o777 == 0o600
    got = read_calibration(cpu, path)
    assert got["llamacpp"].prefill_tps == 350.0 and got["llamacpp"].source.startswith("measured here")
    assert read_calibration(Cpu("AMD EPYC", AVX512, 4, 20.0), path) == {}  # other cores: another machine


def test_code_models_are_found_in_the_hub_cache(tmp_path: Path) -> None:
    gguf = tmp_path / "models--Qwen--Qwen2.5-Coder-1.5B-Instruct-GGUF" / "snapshots" / "r1"
    gguf.mkdir(parents=True)
    (gguf / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").write_bytes(b"x" * 10)
    (gguf / "qwen2.5-coder-1.5b-instruct-q8_0.gguf").write_bytes(b"x" * 20)
    hf = tmp_path / "models--Qwen--Qwen2.5-Coder-0.5B" / "snapshots" / "r2"
    hf.mkdir(parents=True)
    (hf / "config.json").write_text(json.dumps({}))
    (hf / "model.safetensors").write_bytes(b"")
    (tmp_path / "models--HuggingFaceTB--SmolLM2-135M" / "snapshots" / "r3").mkdir(parents=True)
    found = {m.name: m for m in cached_code_models(tmp_path)}
    assert found.keys() == {"Qwen/Qwen2.5-Coder-1.5B-Instruct", "Qwen/Qwen2.5-Coder-0.5B"}
    one_five = found["Qwen/Qwen2.5-Coder-1.5B-Instruct"]
    assert (one_five.engine, one_five.size_bytes) == ("llamacpp", 20) and one_five.path.endswith("q8_0.gguf")
    assert (found["Qwen/Qwen2.5-Coder-0.5B"].engine, found["Qwen/Qwen2.5-Coder-0.5B"].path) == ("vllm", str(hf))
    assert cached_code_models(tmp_path / "absent") == ()
