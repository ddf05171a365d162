"""Document store: incremental edits and UTF-8/16/32 positions (emoji and CJK)."""

from __future__ import annotations

from lsprotocol import types

from vllm_companion.documents import (
    UTF8,
    UTF16,
    UTF32,
    Change,
    Document,
    Position,
    column_to_index,
    index_to_column,
)

P = types.Position


def change(doc: Document, sl: int, sc: int, el: int, ec: int, text: str, enc: str = UTF16) -> None:
    rng = types.Range(start=P(line=sl, character=sc), end=P(line=el, character=ec))
    doc.apply_change(Change(text, rng), enc)


def test_columns_in_each_encoding() -> None:
    line = "a🚀宇b"  # 🚀: 2 UTF-16 units, 4 UTF-8 bytes; 宇: 1 UTF-16 unit, 3 UTF-8 bytes
    assert column_to_index(line, 3, UTF16) == 2  # after the rocket
    assert column_to_index(line, 5, UTF8) == 2
    assert column_to_index(line, 2, UTF32) == 2
    assert index_to_column(line, 3, UTF16) == 4
    assert index_to_column(line, 3, UTF8) == 8
    assert column_to_index(line, 99, UTF16) == len(line)


def test_incremental_edits_with_emoji() -> None:
    doc = Document.from_text("u", "python", 1, "x = '🚀'\ny = 2\n")
    change(doc, 0, 8, 0, 8, " + 'z'")  # after the closing quote: col 8 in UTF-16 (🚀 is 2 units)
    assert doc.text == "x = '🚀' + 'z'\ny = 2\n"
    change(doc, 0, 4, 1, 0, "")  # delete across lines
    assert doc.text == "x = y = 2\n"


def test_multiline_insert_and_append_at_end() -> None:
    doc = Document.from_text("u", "python", 1, "a\nb")
    change(doc, 1, 1, 1, 1, "\nc\nd")
    assert doc.lines == ["a\n", "b\n", "c\n", "d"]
    change(doc, 9, 0, 9, 0, "!")  # past the end: appended
    assert doc.text.endswith("d!")


def test_full_change_and_positions_clamp() -> None:
    doc = Document.from_text("u", "python", 1, "old")
    doc.apply_change(Change("new\ntext"), UTF16)
    assert doc.to_index(P(line=1, character=99), UTF16) == (1, 4)
    assert doc.to_index(P(line=7, character=0), UTF16) == (1, 4)
    assert doc.to_position(0, 3, UTF16) == Position(line=0, character=3)


def test_cursor_on_the_empty_line_after_a_final_newline() -> None:
    doc = Document.from_text("u", "python", 1, "x = 0\nx += 1\n")
    assert doc.to_index(P(line=2, character=0), UTF16) == (2, 0)
    assert doc.line(2) == ""
    from vllm_companion.completion.window import build_window
    from vllm_companion.tokens import Budget

    assert build_window(doc, 2, 0, Budget(100)).prefix == "x = 0\nx += 1\n"
