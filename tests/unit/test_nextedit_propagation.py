"""Edit propagation (nextedit/propagation.py, nextedit/scope.py): a renamed identifier or retyped
literal is offered at its next whole-word occurrence inside the edited line's scope, below the
cursor first, then above; other files only for a name defined at module or class level."""

from __future__ import annotations

from vllm_companion.nextedit.propagation import Lines, Rename, Target, propagate, rename_of
from vllm_companion.nextedit.types import RecordedEdit, Suggestion

A, B = "file:///a.py", "file:///b.py"


def rec(before: str, after: str, row: int = 0) -> RecordedEdit:
    return RecordedEdit(A, "a.py", row, before, after)


def lines(text: str, uri: str = A) -> Lines:
    return Lines(uri, text.split("\n"))


def at(targets: list[Target]) -> tuple[str, int, int] | None:
    """Where the one offer is (uri, row, col), or None for no offer."""
    assert len(targets) <= 1
    return (targets[0].uri, targets[0].suggestion.start_row, targets[0].suggestion.start_col) if targets else None


def offer(text: str, old: str, new: str, uri: str = A, others: tuple[Lines, ...] = ()) -> tuple[str, int, int] | None:
    """The offer after ``old`` became ``new`` where ``new`` first occurs in ``text`` (the cursor after it)."""
    doc = lines(text, uri)
    row = next(i for i, line in enumerate(doc.lines) if new in line)
    col = doc.lines[row].index(new)
    return at(propagate(Rename(old, new, uri, row, col), doc, row, col + len(new), list(others)))


def test_the_renamed_token_is_the_whole_word_and_where_it_is() -> None:
    assert rename_of(rec("def f(count):\n    pass", "def f(total):\n    pass", 3)) == Rename("count", "total", A, 3, 6)
    assert rename_of(rec("def f(count):", "def f(counter):")) == Rename("count", "counter", A, 0, 6)
    assert rename_of(rec("TIMEOUT = 30", "TIMEOUT = 60")) == Rename("30", "60", A, 0, 10)
    assert rename_of(rec("a = 1\nb(x)\n", "a = 1\nb(y)\n", 5)) == Rename("x", "y", A, 5, 2)  # context above


def test_edits_that_are_not_a_rename_give_nothing() -> None:
    assert rename_of(rec("x = 1", "x = 1 + y")) is None  # an insertion
    assert rename_of(rec("f(a, b)", "f(a)")) is None  # a deletion
    assert rename_of(rec("a\nb", "a\nb")) is None
    assert rename_of(None) is None


def test_rename_a_parameter_then_its_next_use_below() -> None:
    doc = lines("def f(total):\n    x = 1\n    return count + recount + count_2 + count")
    (t,) = propagate(Rename("count", "total", A, 0, 6), doc, 0, 11, [])
    assert t.uri == A and t.suggestion == Suggestion(2, 11, 2, 16, "total", "propagation")


def test_an_unused_parameter_offers_nothing_not_the_next_functions_use() -> None:
    text = "def f(total):\n    return 1\n\n\ndef g(count):\n    return count\n"
    assert offer(text, "count", "total") is None


def test_a_renamed_use_goes_up_to_its_signature_not_down_to_the_next_function() -> None:
    text = "def f(count):\n    return total\n\n\ndef g(count):\n    return count\n"
    assert offer(text, "count", "total") == (A, 0, 6)


def test_a_line_in_a_body_climbs_to_its_def_not_its_if_block() -> None:
    text = "def f(count):\n    if x:\n        y = total\n    return count\n\ndef g():\n    count = 2\n"
    assert offer(text, "count", "total") == (A, 3, 11)


def test_a_multi_line_signature_scopes_to_its_function() -> None:
    text = "def f(\n    total,\n    b,\n):\n    return count\n\ndef g(count):\n    return count\n"
    assert offer(text, "count", "total") == (A, 4, 11)


def test_an_identifiers_mentions_in_comments_and_strings_are_skipped() -> None:
    text = ('def f(total):\n    """Args:\n        count: how many.\n    """\n    # count them\n'
            '    s = "count" + \'count\'\n    return f"{count}"\n')
    assert offer(text, "count", "total") == (A, 6, 14)  # an f-string's field is code


def test_a_literal_is_offered_inside_strings() -> None:
    text = "def f():\n    a = 'blue'\n    # red\n    b = 'red'\n"
    assert offer(text, "red", "blue") == (A, 2, 6)
    assert offer("TIMEOUT = 60\nretry(30)\nwait(130)", "30", "60") == (A, 1, 6)


def test_a_function_name_reaches_call_sites_below_and_other_files() -> None:
    text = "def total():\n    return 1\n\n\ndef g():\n    return count()\n"
    assert offer(text, "count", "total") == (A, 5, 11)
    other = lines("import a\na.count()", B)
    assert offer("def total():\n    return 1\n", "count", "total", others=(other,)) == (B, 1, 2)


def test_a_method_and_a_module_level_assignment_reach_other_files() -> None:
    other = lines("x.count()\n", B)
    assert offer("class A:\n    def total(self):\n        return 1\n", "count", "total", others=(other,)) == (B, 0, 2)
    assert offer("total = 1\naccount = 2", "count", "total", others=(other,)) == (B, 0, 2)


def test_a_parameter_or_a_local_never_reaches_other_files() -> None:
    other = lines("print(count)\n", B)
    assert offer("def f(total):\n    return 1\n", "count", "total", others=(other,)) is None
    assert offer("def f():\n    total = 1\n    return 2\n", "count", "total", others=(other,)) is None
    nested = "def f():\n    def total():\n        pass\n\ndef g():\n    count()\n"
    assert offer(nested, "count", "total", others=(other,)) is None  # a nested function is local


def test_a_rename_made_in_another_file_goes_on_here_only_for_an_exported_name() -> None:
    edited = lines("def total():\n    return 1\n\ndef f(total):\n    pass\n", B)
    here = lines("x = 1\ncount()\n")
    assert at(propagate(Rename("count", "total", B, 0, 4), here, 0, 0, [edited])) == (A, 1, 0)
    assert propagate(Rename("count", "total", B, 3, 6), here, 0, 0, [edited]) == []  # a parameter
    assert propagate(Rename("count", "total", "file:///closed.py", 0, 4), here, 0, 0, [edited]) == []


def test_an_edited_line_that_no_longer_holds_the_new_name_offers_nothing() -> None:
    doc = lines("def f(count):\n    return count\n")
    assert propagate(Rename("count", "total", A, 0, 6), doc, 0, 11, []) == []


def test_a_shifted_column_finds_the_name_on_the_edited_line() -> None:
    doc = lines("def f(a, total):\n    return count\n")
    assert at(propagate(Rename("count", "total", A, 0, 0), doc, 0, 14, [])) == (A, 1, 11)


def test_braces_scope_a_parameter_to_its_function() -> None:
    js = "function f(total) {\n  return 1;\n}\nfunction g(count) {\n  return count;\n}\n"
    assert offer(js, "count", "total", "file:///a.js") is None
    js = ("function f(total) {\n  /** count: how many */\n  // count\n  if (x) {\n    y('count');\n  }\n"
          "  return count;\n}\n")
    assert offer(js, "count", "total", "file:///a.js") == ("file:///a.js", 6, 9)


def test_braces_a_use_climbs_past_blocks_to_its_function() -> None:
    go = "func f(count int) int {\n\tif x {\n\t\treturn total\n\t}\n\treturn 0\n}\nfunc g(count int) {\n}\n"
    assert offer(go, "count", "total", "file:///a.go") == ("file:///a.go", 0, 7)


def test_braces_an_exported_function_reaches_its_callers_and_other_files() -> None:
    ts = "export function total(a: number) {\n  return a;\n}\nconst x = count(1);\n"
    assert offer(ts, "count", "total", "file:///a.ts") == ("file:///a.ts", 3, 10)
    other = lines("import {count} from './a';\n", "file:///b.ts")
    assert offer("function total() {}\n", "count", "total", "file:///a.ts", (other,)) == ("file:///b.ts", 0, 8)


def test_a_language_without_scopes_searches_the_whole_file_and_other_files() -> None:
    assert offer("(defun f (total))\n(defun g (count))\n", "count", "total", "file:///a.el") == ("file:///a.el", 1, 10)
    other = lines("count\n", "file:///b.el")
    assert offer("(total)\n", "count", "total", "file:///a.el", (other,)) == ("file:///b.el", 0, 0)


def test_above_the_cursor_when_nothing_below_in_the_scope() -> None:
    doc = lines("y = count\nz = 2\ntotal = 1")
    (t,) = propagate(Rename("count", "total", A, 2, 0), doc, 2, 5, [])
    assert (t.suggestion.start_row, t.suggestion.start_col) == (0, 4)
    doc = lines("y = count\nz = 2\ndef g(total): pass")  # a one-line def's scope is its line
    assert propagate(Rename("count", "total", A, 2, 6), doc, 2, 11, []) == []


def test_no_offer_when_nothing_matches() -> None:
    assert offer("total = 1\naccount = 2\ncounter = 3", "count", "total") is None


def test_an_accepted_call_site_of_a_renamed_function_goes_on_to_the_next_function() -> None:
    text = "def total():\n    return 1\n\ndef g():\n    return total()\n\ndef h():\n    return count()\n"
    accepted = Rename("count", "total", A, 4, 11, accepted=True)
    assert at(propagate(accepted, lines(text), 4, 16, [])) == (A, 7, 11)
    assert propagate(Rename("count", "total", A, 4, 11), lines(text), 4, 16, []) == []  # typed: a local use
    param = "def f(total):\n    return total\n\ndef h(count):\n    return count\n"
    assert propagate(Rename("count", "total", A, 1, 11, accepted=True), lines(param), 1, 16, []) == []


def test_a_language_without_a_lexer_masks_nothing() -> None:
    assert offer('(total)\n(message "count")\n', "count", "total", "file:///a.el") == ("file:///a.el", 1, 10)
