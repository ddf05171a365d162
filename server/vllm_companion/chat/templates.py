"""Chat templates as data, for engines whose ``/v1/chat/completions`` fails.

When the engine has no chat template (TGI's "Template not found", a base model, 404 on older
servers), the conversation is rendered here and sent to ``/v1/completions``. One record per
format, with its source; the resolver picks by model id, like the FIM families.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..prompts.render import pick


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    match: tuple[str, ...]
    system: str  # {content}
    user: str  # {content}
    assistant: str  # {content}: a finished assistant turn
    generation: str  # what opens the assistant's next turn
    stop: tuple[str, ...]
    source: str
    bos: str = ""
    # Where the loop guard starts raising repetition_penalty: Qwen's published chat default
    # (generation_config.json) for ChatML, a mild 1.05 elsewhere.
    repetition_penalty: float = 1.05


CHATML = ChatTemplate(
    name="chatml",
    match=("qwen", "smollm", "codeqwen", "yi-", "hermes"),
    system="<|im_start|>system\n{content}<|im_end|>\n",
    user="<|im_start|>user\n{content}<|im_end|>\n",
    assistant="<|im_start|>assistant\n{content}<|im_end|>\n",
    generation="<|im_start|>assistant\n",
    stop=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    source="https://huggingface.co/Qwen/Qwen2.5-Coder-7B-Instruct/blob/main/tokenizer_config.json",
    repetition_penalty=1.1,
)

DEEPSEEK = ChatTemplate(
    name="deepseek-coder",
    match=("deepseek-coder",),
    system="{content}\n",
    user="### Instruction:\n{content}\n",
    assistant="### Response:\n{content}\n<|EOT|>\n",
    generation="### Response:\n",
    stop=("<|EOT|>", "### Instruction:", "<｜end▁of▁sentence｜>"),
    source="https://huggingface.co/deepseek-ai/deepseek-coder-6.7b-instruct/blob/main/tokenizer_config.json",
    bos="<｜begin▁of▁sentence｜>",
)

INST = ChatTemplate(
    name="llama-inst",
    match=("codellama", "llama-2", "mistral", "mixtral", "codestral"),
    system="<<SYS>>\n{content}\n<</SYS>>\n\n",
    user="[INST] {content} [/INST]",
    assistant=" {content} </s>",
    generation="",
    stop=("</s>", "[INST]"),
    source="https://github.com/meta-llama/codellama/blob/main/llama/generation.py (chat_completion)",
)

STARCODER2 = ChatTemplate(
    name="starcoder2-instruct",
    match=("starcoder",),
    system="{content}\n\n",
    user="### Instruction\n{content}\n\n",
    assistant="### Response\n{content}<|endoftext|>\n\n",
    generation="### Response\n",
    stop=("<|endoftext|>", "### Instruction"),
    source="https://huggingface.co/bigcode/starcoder2-15b-instruct-v0.1/blob/main/tokenizer_config.json",
)

TEMPLATES = (CHATML, DEEPSEEK, INST, STARCODER2)
BY_NAME = {t.name: t for t in TEMPLATES}


def resolve_template(model_id: str | None, override: str = "auto") -> ChatTemplate:
    return pick(TEMPLATES, model_id, override, CHATML)


def render_chat(template: ChatTemplate, messages: list[dict[str, str]]) -> str:
    """The conversation as one prompt, ending where the assistant's next turn begins."""
    parts = [template.bos]
    system = "".join(m["content"] for m in messages if m["role"] == "system")
    if template is INST:
        return _render_inst(messages, system)
    if system:
        parts.append(template.system.replace("{content}", system))
    for m in messages:
        if m["role"] == "user":
            parts.append(template.user.replace("{content}", m["content"]))
        elif m["role"] == "assistant":
            parts.append(template.assistant.replace("{content}", m["content"]))
    parts.append(template.generation)
    return "".join(parts)


def _render_inst(messages: list[dict[str, str]], system: str) -> str:
    """Llama/Mistral: the system prompt goes inside the first [INST]."""
    out = ["<s>"]
    first = True
    for m in messages:
        if m["role"] == "user":
            content = m["content"]
            if first and system:
                content = INST.system.replace("{content}", system) + content
            first = False
            out.append(INST.user.replace("{content}", content))
        elif m["role"] == "assistant":
            out.append(INST.assistant.replace("{content}", m["content"]) + "<s>")
    return "".join(out)
