"""Definitions in a source file, as signatures, found with a real parser (tree-sitter grammars
from ``tree-sitter-language-pack`` 0.13, whose wheel carries them: later versions download
grammars at first use, which a private, offline tool must not do).

The tree-walking itself (``top_level``, ``signature``) lives in syntax.py, which runs in the parse
worker process (parsing.py): a tree-sitter node never reaches the server's own process. Files are
read through the privacy filter (privacy.py: workspace only, no secret files, at most 256 kB),
parsed within a budget (parsing.py), and parsed results are cached by path, size and mtime, the
filter checked again on every use (imports.py).
"""

from __future__ import annotations

from .syntax import MAX_DEF_LINES, signature, text, top_level

GRAMMARS = {"python": "python", "javascript": "javascript", "javascriptreact": "javascript",
            "typescript": "typescript", "typescriptreact": "tsx", "c": "c", "cpp": "cpp"}

__all__ = ["GRAMMARS", "MAX_DEF_LINES", "signature", "text", "top_level"]
