"""Context beyond the file: other open documents, recent edits, imported definitions (gather.py)."""

from .gather import ContextGatherer
from .sources import Snippet, context_tokens

__all__ = ["ContextGatherer", "Snippet", "context_tokens"]
