"""Inline completion: window, prompt, generation, post-processing, cache."""
