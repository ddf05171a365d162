"""The token budgets, said once (tokens.py): the estimate, the completion prompt's shares, chat."""

from __future__ import annotations

from vllm_companion.completion.window import build_window
from vllm_companion.context.gather import SOURCES
from vllm_companion.documents import Document
from vllm_companion.tokens import (
    MIN_CHAT,
    SOURCE_SHARES,
    Budget,
    chars_within,
    chat_budget,
    estimate_tokens,
    source_share,
    tokens_for_chars,
)


def test_the_estimate_counts_utf8_bytes_over_three_and_is_never_zero() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcdef") == 3
    assert estimate_tokens("宇宙") == 3  # six bytes: CJK counts about one token a character
    assert estimate_tokens("\ud800") == 2  # a lone surrogate (an editor's half pair) does not raise


def test_the_context_takes_a_quarter_of_the_prompt_at_most_and_never_more_than_its_cap() -> None:
    assert Budget(2048).context(512) == 512
    assert Budget(1000).context(512) == 250
    assert Budget(1000).context(0) == 0
    assert Budget(1000).suffix() == 250


def test_every_context_source_has_a_share_and_the_shares_fill_the_context_budget() -> None:
    assert set(SOURCE_SHARES) == set(SOURCES)
    assert abs(sum(SOURCE_SHARES.values()) - 1.0) < 1e-9
    assert sum(source_share(512, s) for s in SOURCES) <= 512
    assert source_share(500, "recent-edits") == 100


def test_the_window_gets_what_the_context_left() -> None:
    total = Budget.for_model(2048, 128, 2048)
    after = total.less(300)
    assert after.prompt_tokens == total.prompt_tokens - 300
    assert total.less(10_000).prompt_tokens == 16  # never below the smallest prompt
    doc = Document("file:///a.py", "python", 1, "x = 1\n" * 5000)
    window = build_window(doc, 4000, 0, after)
    assert estimate_tokens(window.prefix) + estimate_tokens(window.suffix) <= after.prompt_tokens
    assert estimate_tokens(window.suffix) <= after.suffix() + 2


def test_a_halved_budget_floors_at_the_smallest_prompt() -> None:
    assert Budget(1000).halved().prompt_tokens == 500
    assert Budget(20).halved().prompt_tokens == 16


def test_the_chat_budget_leaves_room_for_the_answer_and_has_a_floor() -> None:
    assert chat_budget(8192, 1024) == 8192 - 1024 - 16
    assert chat_budget(1024, 1024) == MIN_CHAT


def test_a_cut_to_a_token_count_keeps_one_and_a_half_characters_a_token() -> None:
    assert chars_within(100) == 150
    assert chars_within(-5) == 0  # no room left: nothing kept, never a negative slice
    assert estimate_tokens("a" * chars_within(100)) <= 100


def test_a_length_alone_counts_as_that_many_ascii_characters() -> None:
    for chars in (0, 1, 99, 100, 3000):
        assert tokens_for_chars(chars) == estimate_tokens("x" * chars)
    assert tokens_for_chars(-3) == 1  # a bad row's length never goes below the estimate's floor
