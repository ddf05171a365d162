"""From a predicted region to an edit (nextedit/edits.py): the smallest replacement, in
code points, and the filters (no-op, reversal, brackets, emptied region, outside the region)."""

from __future__ import annotations

from vllm_companion.documents import Document
from vllm_companion.nextedit.edits import eol_of, hunks, suggestions, with_eol
from vllm_companion.nextedit.types import RecordedEdit, Region, Suggestion


def region(text: str, start_row: int = 10) -> Region:
    return Region("file:///a.py", "a.py", "python", start_row, start_row + text.count("\n") + 1, text, start_row, 0)


def one(text: str, predicted: str, last: RecordedEdit | None = None) -> Suggestion | None:
    found = suggestions(region(text), predicted, last, "test")
    assert len(found) <= 1
    return found[0] if found else None


def test_the_smallest_replacement_in_document_rows() -> None:
    s = one("def f(a):\n    return a + 1\n\nx = 2", "def f(a):\n    return a + 2\n\nx = 2")
    assert s == Suggestion(11, 15, 11, 16, "2", "test")


def test_an_inserted_line_and_a_deleted_last_line() -> None:
    s = one("a\nb", "a\nnew\nb")
    assert s is not None and (s.start_row, s.start_col, s.end_row, s.end_col, s.text) == (11, 0, 11, 0, "new\n")
    s = one("a\nb\nc", "a\nb")
    assert s is not None and (s.start_row, s.start_col, s.end_row, s.end_col, s.text) == (11, 1, 12, 1, "")


def test_two_blocks_are_one_edit() -> None:
    s = one("x = 1\ny\nz = 1", "x = 2\ny\nz = 2")
    assert s is not None and (s.start_row, s.start_col, s.end_row, s.end_col, s.text) == (10, 4, 12, 5, "2\ny\nz = 2")


def test_no_op_and_crlf_answers_change_nothing() -> None:
    assert one("a\nb", "a\nb") is None
    assert one("a\nb", "a\r\nb\r\n") is None  # a model that answers with CRLF line ends


def test_astral_characters_count_as_one_code_point() -> None:
    s = one("s = '😀 x'", "s = '😀 y'")
    assert s is not None and (s.start_col, s.end_col, s.text) == (7, 8, "y")
    doc = Document.from_text("u", "python", 1, "".join("\n" for _ in range(10)) + "s = '😀 x'\n")
    assert doc.to_position(s.start_row, s.start_col, "utf-16").character == 8  # the edge's UTF-16 column


def test_the_reversal_of_the_last_edit_is_dropped() -> None:
    last = RecordedEdit("file:///a.py", "a.py", 10, "def f(count):", "def f(total):")
    assert one("def f(total):\n    pass", "def f(count):\n    pass", last) is None
    assert one("def f(total):\n    pass", "def f(amount):\n    pass", last) is not None


def test_unbalanced_brackets_are_dropped() -> None:
    assert one("f(a, b)", "f(a, b") is None
    assert one("f(a, b)", "f(a, g(b))") is not None


def test_an_emptied_region_or_a_huge_answer_is_refused() -> None:
    assert one("a = 1\nb = 2", "") is None
    assert one("a = 1", "a = 2\n" * 1000) is None
    assert hunks("a", "b\n" * 1000) is None


def test_edits_stay_inside_the_region() -> None:
    text = "a\nb\nc"
    for predicted in ("z\na\nb\nc", "a\nb\nc\nz", "a\nb"):
        s = one(text, predicted)
        assert s is not None and 10 <= s.start_row <= s.end_row <= 12


def test_line_endings_follow_the_document() -> None:
    assert eol_of("x\r\n") == "\r\n" and eol_of("x\n") == "\n" and eol_of("x") == "\n"
    assert with_eol("a\nb", "\r\n") == "a\r\nb"
