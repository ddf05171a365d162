"""Chat and inline edit over LSP: prompt assembly, template fallback, streaming with the loop guard."""
