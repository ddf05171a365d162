"""Token-budgeted windows: fit the budget, cut on lines, stable edges while typing."""

from __future__ import annotations

from vllm_companion.completion.window import build_window
from vllm_companion.documents import Document
from vllm_companion.tokens import STEP, Budget, estimate_tokens


def big_doc(lines: int) -> Document:
    text = "".join(f"value_{i} = compute({i}, 'some text here')\n" for i in range(lines))
    return Document.from_text("u", "python", 1, text)


def test_budget_from_model_length() -> None:
    assert Budget.for_model(2048, 128, 10_000).prompt_tokens == 2048 - 128 - 32
    assert Budget.for_model(32_768, 128, 2048).prompt_tokens == 2048
    assert Budget.for_model(100, 128, 2048).prompt_tokens == 16


def test_window_fits_budget_on_line_boundaries() -> None:
    doc = big_doc(100_000)
    w = build_window(doc, 50_000, 5, Budget(1000))
    assert estimate_tokens(w.prefix) + estimate_tokens(w.suffix) <= 1000
    assert w.prefix.endswith(doc.lines[50_000][:5])
    head = w.prefix[: -5]
    assert head == "" or (head.endswith("\n") and doc.text.find(head) != -1)
    assert w.suffix.startswith(doc.lines[50_000][5:])


def test_window_start_is_stable_while_typing() -> None:
    doc = big_doc(5000)
    starts = {build_window(doc, 3000, col, Budget(1500)).start_row for col in range(0, 30)}
    assert len(starts) == 1
    assert next(iter(starts)) % STEP == 0


def test_consecutive_lines_share_the_prompt_prefix() -> None:
    doc = big_doc(5000)
    a = build_window(doc, 3000, 0, Budget(1500))
    b = build_window(doc, 3001, 0, Budget(1500))
    if a.start_row == b.start_row:
        assert b.prefix.startswith(a.prefix)


def test_huge_single_line_is_clipped_near_the_cursor() -> None:
    doc = Document.from_text("u", "js", 1, "x" * 3_000_000 + "\n")
    w = build_window(doc, 0, 2_000_000, Budget(500))
    assert estimate_tokens(w.prefix) + estimate_tokens(w.suffix) <= 520
    assert w.line_prefix.endswith("x")


def test_cjk_counts_more_tokens_than_ascii() -> None:
    assert estimate_tokens("宇宙" * 30) > estimate_tokens("ab" * 30)


def test_selected_completion_replaces_the_typed_word() -> None:
    doc = Document.from_text("u", "python", 1, "os.pa\n")
    w = build_window(doc, 0, 5, Budget(100), insert="path", replace_from=3)
    assert w.line_prefix == "os.path" and w.prefix == "os.path"
