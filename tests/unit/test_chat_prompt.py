"""Chat prompt assembly, templates, secret filtering, edit extraction."""

from __future__ import annotations

from vllm_companion.chat.context import SYSTEM_PROMPT, Snippet, build_messages, fence
from vllm_companion.chat.edit import extract_code
from vllm_companion.chat.templates import CHATML, DEEPSEEK, INST, render_chat, resolve_template
from vllm_companion.privacy import Privacy


def is_secret(uri: str, globs: list[str] | None = None) -> bool:
    return Privacy(globs or []).is_secret(uri)

MSGS = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "U2"},
]


def test_templates_render_each_format() -> None:
    assert render_chat(CHATML, MSGS) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
        "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_chat(INST, MSGS) == "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]"
    assert render_chat(DEEPSEEK, MSGS).endswith("### Instruction:\nU2\n### Response:\n")


def test_template_resolution() -> None:
    assert resolve_template("HuggingFaceTB/SmolLM2-135M-Instruct") is CHATML
    assert resolve_template("deepseek-ai/deepseek-coder-6.7b-instruct") is DEEPSEEK
    assert resolve_template("codellama/CodeLlama-7b-Instruct-hf") is INST
    assert resolve_template("x", "llama-inst") is INST


def test_secrets() -> None:
    for uri in ("file:///p/.env", "file:///p/.env.local", "file:///home/u/.ssh/id_rsa", "file:///p/tls.pem",
                "file:///p/my%20secrets.txt"):
        assert is_secret(uri), uri
    assert not is_secret("file:///p/app.py")
    assert is_secret("file:///p/app.cfg", ["*.cfg"])


def test_fence_uses_longer_ticks_when_the_text_has_fences() -> None:
    text = fence(Snippet("file:///p/README.md", "```py\nx\n```", "markdown"))
    assert text.startswith("README.md:\n````markdown\n") and text.endswith("\n````")


def test_budget_keeps_system_and_latest_and_newest_history() -> None:
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} " + "x" * 300} for i in range(20)]
    history.append({"role": "user", "content": "latest"})
    messages, _ = build_messages(history, [], 500, SYSTEM_PROMPT, Privacy())
    assert messages[0]["role"] == "system" and messages[-1]["content"] == "latest"
    assert messages[1]["role"] == "user"
    assert "m19" in messages[-2]["content"]


def test_latest_question_is_shortened_in_the_middle_as_a_last_resort() -> None:
    history = [{"role": "user", "content": "A" * 5000 + "Z" * 5000}]
    messages, _ = build_messages(history, [], 400, SYSTEM_PROMPT, Privacy())
    text = messages[-1]["content"]
    assert text.startswith("A") and text.endswith("Z") and "left out" in text and len(text) < 1000


def test_extract_code() -> None:
    assert extract_code("Sure:\n```python\nx = 2\n```\nDone.", "x = 1\n") == "x = 2\n"
    assert extract_code("Here you go:\ny = 3", "y = 1") == "y = 3"
    assert extract_code("```\nreturn 1\n```", "    return 0\n") == "    return 1\n"
    assert extract_code("def f():\n    pass", "def g(): pass") == "def f():\n    pass"
