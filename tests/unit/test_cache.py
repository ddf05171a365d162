"""Cache and typed-ahead reuse."""

from __future__ import annotations

from vllm_companion.completion.cache import CompletionCache, remainder, typed_since


def test_typed_since() -> None:
    assert typed_since("def f", ")", "def foo", ")") == "oo"
    assert typed_since("def f", ")", "def g", ")") is None
    assert typed_since("def f", ")", "def foo", "]") is None


def test_remainder() -> None:
    assert remainder("oobar()", "oo") == "bar()"
    assert remainder("oobar()", "ox") is None
    assert remainder("oo", "oo") is None


def test_typed_ahead_serves_the_rest_of_the_shown_suggestion() -> None:
    cache = CompletionCache(8, 60)
    cache.put(("m", "f", "p"), "u", "x = ", "\n", "compute(1)")
    assert cache.typed_ahead("u", "x = com", "\n") == "pute(1)"
    assert cache.typed_ahead("u", "x = cat", "\n") is None
    assert cache.typed_ahead("u", "x = ", "\n") is None  # same spot: the LRU answers
    assert cache.get(("m", "f", "p")) == "compute(1)"
    cache.forget("u")
    assert cache.typed_ahead("u", "x = com", "\n") is None


def test_disabled_cache() -> None:
    cache = CompletionCache(0, 60)
    cache.put(("m", "f", "p"), "u", "a", "", "b")
    assert cache.get(("m", "f", "p")) is None
