"""vLLM Companion: a local, private, Copilot-class coding assistant over LSP."""

__version__ = "0.1.0"
