"""Check that a family's FIM tokens are single special tokens of the model actually served.

When they are not (a chat model behind a coder's name, a family guessed wrong), a FIM-wrapped
prompt is just odd text to the model and it answers with chat-style garbage. vLLM's ``/tokenize``
tells: each FIM token must encode to exactly one token. Servers without ``/tokenize`` are trusted.
"""

from __future__ import annotations

from ..prompts import Family
from .client import Backend


async def unknown_fim_tokens(backend: Backend, family: Family, model: str) -> list[str] | None:
    """FIM tokens the model does not know as single tokens; None if the server cannot tell."""
    bad: list[str] = []
    for token in family.fim_tokens:
        count = await backend.tokenize_count(token, model)
        if count is None:
            return None
        if count != 1:
            bad.append(token)
    return bad
