"""Edit propagation (nextedit/propagation.py): a renamed identifier or retyped literal is offered
at its next whole-word occurrence, below the cursor first, then above, then in other files."""

from __future__ import annotations

from vllm_companion.nextedit.propagation import Lines, Rename, propagate, rename_of
from vllm_companion.nextedit.types import RecordedEdit, Suggestion


def rec(before: str, after: str) -> RecordedEdit:
    return RecordedEdit("file:///a.py", "a.py", 0, before, after)


def lines(text: str, uri: str = "file:///a.py") -> Lines:
    return Lines(uri, text.split("\n"))


def test_the_renamed_token_is_the_whole_word() -> None:
    assert rename_of(rec("def f(count):\n    pass", "def f(total):\n    pass")) == Rename("count", "total")
    assert rename_of(rec("def f(count):", "def f(counter):")) == Rename("count", "counter")
    assert rename_of(rec("TIMEOUT = 30", "TIMEOUT = 60")) == Rename("30", "60")


def test_edits_that_are_not_a_rename_give_nothing() -> None:
    assert rename_of(rec("x = 1", "x = 1 + y")) is None  # an insertion
    assert rename_of(rec("f(a, b)", "f(a)")) is None  # a deletion
    assert rename_of(rec("a\nb", "a\nb")) is None
    assert rename_of(None) is None


def test_rename_a_parameter_then_its_next_use_below() -> None:
    doc = lines("def f(total):\n    x = 1\n    return count + recount + count_2 + count")
    (t,) = propagate(Rename("count", "total"), doc, 0, 12, [])
    assert t.uri == "file:///a.py" and t.suggestion == Suggestion(2, 11, 2, 16, "total", "propagation")


def test_above_when_nothing_below() -> None:
    doc = lines("y = count\nz = 2\ndef g(total): pass")
    (t,) = propagate(Rename("count", "total"), doc, 2, 5, [])
    assert (t.suggestion.start_row, t.suggestion.start_col) == (0, 4)


def test_retype_a_literal() -> None:
    doc = lines("TIMEOUT = 60\nretry(30)\nwait(130)")
    (t,) = propagate(Rename("30", "60"), doc, 0, 12, [])
    assert (t.suggestion.start_row, t.suggestion.start_col, t.suggestion.text) == (1, 6, "60")


def test_other_open_files_when_the_current_has_none() -> None:
    other = lines("import a\na.count()", "file:///b.py")
    (t,) = propagate(Rename("count", "total"), lines("total = 1"), 0, 0, [other])
    assert t.uri == "file:///b.py" and (t.suggestion.start_row, t.suggestion.start_col) == (1, 2)


def test_no_offer_when_nothing_matches() -> None:
    assert propagate(Rename("count", "total"), lines("total = 1\naccount = 2\ncounter = 3"), 0, 0, []) == []
