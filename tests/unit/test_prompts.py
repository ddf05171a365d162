"""Each family's FIM prompt against its golden file; resolution from model ids; overrides.

Regenerate goldens after an intended change: ``python -m tests.unit.test_prompts --update``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vllm_companion.prompts import FAMILIES, PLAIN, FimContext, render_fim, resolve_family

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "prompts"
CTX = FimContext(
    prefix='def greet(name):\n    """Say hello {name}."""\n    return ',
    suffix="\n\nprint(greet('宇宙 🚀'))\n",
    path="hello.py",
    other_files=(("util.py", "def shout(s):\n    return s.upper()\n"), ("pkg/names.py", "NAMES = ['ada']\n")),
    comment="#",
)


def _golden(name: str) -> Path:
    return GOLDEN / f"{name}.txt"


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_prompt_matches_golden(family) -> None:  # type: ignore[no-untyped-def]
    assert render_fim(family, CTX) == _golden(family.name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "qwen2.5-coder"),
        ("qwen2.5-coder:1.5b-base", "qwen2.5-coder"),
        ("deepseek-ai/deepseek-coder-6.7b-base", "deepseek-coder"),
        ("TheBloke/deepseek-coder-6.7B-instruct-AWQ", "deepseek-coder"),
        ("Qwen/CodeQwen1.5-7B", "codeqwen1.5"),
        ("bigcode/starcoder2-3b", "starcoder2"),
        ("codellama/CodeLlama-7b-hf", "codellama"),
        ("mistralai/Codestral-22B-v0.1", "codestral"),
        ("smollm2", "plain"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "plain"),
        (None, "plain"),
    ],
)
def test_family_resolves_from_model_id(model_id: str | None, family: str) -> None:
    assert resolve_family(model_id).name == family


def test_override_wins_and_unknown_override_falls_back_to_auto() -> None:
    assert resolve_family("smollm2", "starcoder2").name == "starcoder2"
    assert resolve_family("bigcode/starcoder2-3b", "no-such-family").name == "starcoder2"


def test_placeholders_inside_code_stay_literal() -> None:
    ctx = FimContext(prefix="x = '{suffix}'", suffix="y = '{prefix}{files}'")
    out = render_fim(resolve_family("qwen2.5-coder"), ctx)
    assert out == "<|fim_prefix|>x = '{suffix}'<|fim_suffix|>y = '{prefix}{files}'<|fim_middle|>"


def test_plain_family_sends_prefix_only_after_commented_snippets() -> None:
    assert render_fim(PLAIN, CTX).endswith("# NAMES = ['ada']\n" + CTX.prefix)
    no_comment = FimContext(CTX.prefix, CTX.suffix, CTX.path, CTX.other_files)  # a language without line comments
    assert render_fim(PLAIN, no_comment) == CTX.prefix


def test_every_fim_family_has_source_and_stops() -> None:
    for family in FAMILIES:
        assert family.source
        if family.is_fim:
            assert family.stop and all(tok in family.template or tok.startswith("<") for tok in family.fim_tokens)


if __name__ == "__main__" and "--update" in sys.argv:
    for fam in FAMILIES:
        _golden(fam.name).write_text(render_fim(fam, CTX), encoding="utf-8")
        print("wrote", _golden(fam.name))
