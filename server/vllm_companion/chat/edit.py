"""Inline edit: the model rewrites a selection; the answer becomes a WorkspaceEdit.

Models wrap code in fences and add explanations however they are told; ``extract_code`` keeps
the code: the first fenced block if there is one, else the text minus any leading prose line
that ends with a colon. Indentation of the selection's first line is restored when the model
dropped it.
"""

from __future__ import annotations

import re

EDIT_SYSTEM = (
    "You rewrite code. Reply with the rewritten code only, in one fenced block, no explanation. "
    "Keep the original indentation and style; change only what the instruction asks."
)
_FENCE = re.compile(r"(`{3,}|~{3,})[^\n]*\n(.*?)\n?\1", re.S)


def edit_messages(instruction: str, code: str, path: str, language: str) -> list[dict[str, str]]:
    user = (
        f"File: {path}\nInstruction: {instruction}\n\nCode to rewrite:\n```{language}\n{code}\n```"
    )
    return [{"role": "system", "content": EDIT_SYSTEM}, {"role": "user", "content": user}]


def extract_code(answer: str, original: str) -> str:
    match = _FENCE.search(answer)
    if match:
        code = match.group(2)
    else:
        lines = answer.strip("\n").split("\n")
        while lines and lines[0].rstrip().endswith(":") and not lines[0].startswith((" ", "\t")) and len(lines) > 1:
            if re.match(r"^(def|class|if|for|while|with|try|else|elif|except|async)\b", lines[0]):
                break
            lines = lines[1:]
        code = "\n".join(lines)
    indent = original[: len(original) - len(original.lstrip(" \t"))]
    if indent and code and not code.startswith((" ", "\t")):
        code = "\n".join(indent + line if line.strip() else line for line in code.split("\n"))
    if original.endswith("\n") and not code.endswith("\n"):
        code += "\n"
    return code
