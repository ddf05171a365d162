"""Engine command lines built from launch plans."""

from __future__ import annotations

from vllm_companion.engine.command import build_command
from vllm_companion.engine.planning.plan import plan_launch


def test_llamacpp_keeps_the_next_request_when_a_client_hangs_up() -> None:
    cmd = build_command(plan_launch([], {"kind": "llamacpp"}), 8123, "/m.gguf", python="py")
    argv = cmd.argv
    assert argv[:3] == ["py", "-m", "llama_cpp.server"]
    assert argv[argv.index("--interrupt_requests") + 1] == "false"
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8123"


def test_vllm_cpu_command_is_local_and_offline_for_a_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cmd = build_command(plan_launch([]), 8124, str(tmp_path), python="py")
    assert cmd.argv[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert "--enforce-eager" in cmd.argv and "--enable-prefix-caching" in cmd.argv
    assert cmd.env == {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}


def test_the_next_edit_process_loads_its_gguf_with_the_base_models_tokenizer() -> None:
    from vllm_companion.engine.paired import next_edit_launch
    from vllm_companion.engine.planning.hardware import Gpu

    plan = next_edit_launch(plan_launch([Gpu(0, "NVIDIA GeForce RTX 3060", 12288, 12288 - 400, (8, 6))]))
    assert plan is not None
    argv = build_command(plan, 8125, plan.model, python="py", tokenizer="Qwen/Qwen2.5-Coder-1.5B").argv
    assert argv[argv.index("--model") + 1] == "sweepai/sweep-next-edit-1.5B:Q8_0"
    assert argv[argv.index("--served-model-name") + 1] == "sweepai/sweep-next-edit-1.5B"
    assert argv[argv.index("--tokenizer") + 1] == "Qwen/Qwen2.5-Coder-1.5B" and "--enforce-eager" in argv
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.21"
    assert "--tokenizer" not in build_command(plan, 8125, plan.model, python="py").argv
