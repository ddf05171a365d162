"""One rule from a model id to its record (model_ids.py), for prompt families, chat templates and
architectures alike (issue 21, point 6)."""

from __future__ import annotations

from dataclasses import dataclass

from vllm_companion.chat.templates import TEMPLATES, resolve_template
from vllm_companion.engine.planning.architectures import ARCHS, arch_of
from vllm_companion.model_ids import lookup
from vllm_companion.prompts.families import FAMILIES
from vllm_companion.prompts.render import resolve_family


@dataclass(frozen=True)
class Rec:
    name: str
    match: tuple[str, ...]


def test_the_longest_pattern_wins_whatever_the_order() -> None:
    short, long = Rec("short", ("smollm2",)), Rec("long", ("smollm2-1.7b",))
    assert lookup([short, long], "HuggingFaceTB/SmolLM2-1.7B-Instruct") is long
    assert lookup([long, short], "HuggingFaceTB/SmolLM2-1.7B-Instruct") is long
    assert lookup([short, long], "HuggingFaceTB/SmolLM2-360M") is short


def test_underscores_read_as_dashes_in_ids_and_patterns() -> None:
    rec = Rec("qwen", ("qwen2_5-coder",))
    assert lookup([rec], "Qwen/Qwen2-5-Coder-7B") is rec
    assert lookup([Rec("q", ("qwen2.5-coder",))], "QWEN2.5_CODER").name == "q"
    assert lookup([Rec("q", ("qwen2.5-coder",))], "qwen2-5-coder") is None  # only _ and - are one
    assert lookup([rec], None) is None and lookup([Rec("none", ())], "anything") is None


def test_families_templates_and_architectures_follow_the_same_rule() -> None:
    ids = ["Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "Qwen/Qwen2_5-Coder-1.5B", "deepseek-ai/deepseek-coder-6.7b-base",
           "bigcode/starcoder2-3b", "codellama/CodeLlama-7b-hf", "code_llama-13b", "HuggingFaceTB/SmolLM2-1.7B",
           "mistralai/Codestral-22B-v0.1", "unknown/model"]
    for model_id in ids:
        assert resolve_family(model_id) == (lookup(FAMILIES, model_id) or resolve_family(None))
        assert resolve_template(model_id) == (lookup(TEMPLATES, model_id) or resolve_template(None))
        assert arch_of(model_id) == lookup(ARCHS, model_id)
    assert resolve_family("Qwen/Qwen2_5-Coder-1.5B").name == resolve_family("Qwen/Qwen2.5-Coder-1.5B").name
    assert arch_of("HuggingFaceTB/SmolLM2-1.7B") is not None
    assert arch_of("CodeLlama_13b_hf") == arch_of("codellama-13b") is not None
