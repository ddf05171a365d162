"""Fill-in-the-middle prompt families as data: one record per family, with where its tokens come from.

The whole prompt is rendered here, client-side, and sent as the raw ``prompt`` of
``/v1/completions``: vLLM rejects ``suffix`` for ordinary models, and letting a server guess the
format is what produces "chat-style garbage" in other tools. A model without FIM tokens gets
the ``plain`` family (prefix only); the suffix is then used after generation instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    match: tuple[str, ...]  # lower-case substrings of a model id that select this family
    template: str  # {prefix} {suffix}; plus {files} where repo-level context is supported
    stop: tuple[str, ...]
    fim_tokens: tuple[str, ...]  # must each be one special token of the serving model
    source: str
    repo_header: str = ""  # starts the multi-file section; empty = no multi-file context
    file_template: str = ""  # one other open file: {path} {content}
    current_file: str = ""  # names the current file after the others: {path}

    @property
    def is_fim(self) -> bool:
        return bool(self.fim_tokens)


QWEN25_CODER = Family(
    name="qwen2.5-coder",
    match=("qwen2.5-coder", "qwen2_5-coder", "qwen2.5coder", "qwen3-coder"),
    template="{files}<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
    repo_header="<|repo_name|>workspace\n",
    file_template="<|file_sep|>{path}\n{content}\n",
    current_file="<|file_sep|>{path}\n",
    stop=("<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>",
          "<|file_sep|>", "<|repo_name|>", "<|im_start|>", "<|im_end|>"),
    fim_tokens=("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    source="https://github.com/QwenLM/Qwen2.5-Coder#4-repository-level-code-completion",
)

DEEPSEEK_CODER = Family(
    name="deepseek-coder",
    match=("deepseek-coder",),
    template="<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>",
    stop=("<｜end▁of▁sentence｜>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<|EOT|>"),
    fim_tokens=("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    source="https://github.com/deepseek-ai/DeepSeek-Coder#2-code-insertion",
)

CODEQWEN15 = Family(
    name="codeqwen1.5",
    match=("codeqwen",),
    template="<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>",
    stop=("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|im_end|>"),
    fim_tokens=("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    source="https://github.com/QwenLM/CodeQwen1.5#2-file-level-code-completion-fill-in-the-middle",
)

STARCODER2 = Family(
    name="starcoder2",
    match=("starcoder",),
    template="{files}<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>",
    repo_header="<repo_name>workspace",
    file_template="<file_sep>{path}\n{content}\n",
    current_file="<file_sep>{path}\n",
    stop=("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<repo_name>"),
    fim_tokens=("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    source="https://huggingface.co/bigcode/starcoder2-15b/blob/main/tokenizer_config.json",
)

CODELLAMA = Family(
    name="codellama",
    match=("codellama", "code-llama", "code_llama"),
    # Meta's infilling_prompt_tokens: "<PRE> " + prefix + " <SUF>" + suffix + " <MID>"
    template="<PRE> {prefix} <SUF>{suffix} <MID>",
    stop=("<EOT>", "</s>", "<PRE>", "<SUF>", "<MID>"),
    fim_tokens=("<PRE>", "<SUF>", "<MID>"),
    source="https://github.com/meta-llama/codellama/blob/main/llama/generation.py",
)

CODESTRAL = Family(
    name="codestral",
    match=("codestral",),
    # mistral-common encode_fim: [SUFFIX] suffix [PREFIX] prefix (suffix first: SPM order)
    template="[SUFFIX]{suffix}[PREFIX]{prefix}",
    stop=("</s>", "[INST]", "[SUFFIX]", "[PREFIX]", "[MIDDLE]"),
    fim_tokens=("[SUFFIX]", "[PREFIX]"),
    source="https://github.com/mistralai/mistral-common/blob/main/src/mistral_common/tokens/tokenizers/instruct.py",
)

PLAIN = Family(
    name="plain",
    match=(),
    template="{prefix}",
    stop=(),
    fim_tokens=(),
    source="(no FIM tokens: prefix-only completion; the suffix is used after generation)",
)

FAMILIES: tuple[Family, ...] = (QWEN25_CODER, DEEPSEEK_CODER, CODEQWEN15, STARCODER2, CODELLAMA, CODESTRAL, PLAIN)
BY_NAME = {f.name: f for f in FAMILIES}
