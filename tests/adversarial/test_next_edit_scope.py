"""Attacks on edit propagation's scope rule and lexer (nextedit/scope.py, nextedit/lexing.py): a
body of 20,000 lines with no ``def`` above it, 20,000 docstring quotes, 20,000 unclosed braces,
lines of unclosed quotes, a declaration-looking line, a definition search through lines full of
the name. Each is bounded by the request's budget (propagation.py): at most 0.5 s on 2 cores."""

from __future__ import annotations

import time

from vllm_companion.nextedit.propagation import Lines, Rename, propagate

PY, JS = "file:///w/a.py", "file:///w/a.js"


def timed(rename: Rename, doc: Lines, others: list[Lines] | None = None) -> tuple[list[object], float]:
    start = time.perf_counter()
    found = propagate(rename, doc, rename.row, rename.col + len(rename.new), others or [])
    return list(found), time.perf_counter() - start


def test_a_deep_body_with_no_def_above_climbs_within_the_budget() -> None:
    body = ["    x = 1"] * 20_000 + ["    y = total", "    z = count"]
    found, took = timed(Rename("count", "total", PY, 20_001, 8), Lines(PY, ["if a:", *body]))
    assert took < 0.5 and len(found) == 1


def test_twenty_thousand_docstring_quotes_are_lexed_within_the_budget() -> None:
    lines = ["def f(total):", *(['    """count"""'] * 20_000), "    return count"]
    found, took = timed(Rename("count", "total", PY, 0, 6), Lines(PY, lines))
    assert took < 0.5 and len(found) <= 1


def test_unclosed_braces_and_quotes_do_not_run_away() -> None:
    lines = ["function f(total) {", *(["{ '\" count \"' /* count " * 150] * 20_000), "return count; }"]
    found, took = timed(Rename("count", "total", JS, 0, 11), Lines(JS, lines))
    assert took < 0.5 and found == []  # every mention is in a string or a comment, the rest unread


def test_a_declaration_looking_line_is_searched_in_linear_time() -> None:
    line = "func (" * 800 + "total"
    found, took = timed(Rename("count", "total", "file:///w/a.go", 0, len(line) - 5), Lines("file:///w/a.go", [line]))
    assert took < 0.5 and found == []


def test_an_accepted_chain_searching_for_a_definition_is_bounded() -> None:
    """The definition of an accepted call site's name is looked for through the whole file."""
    lines = ["def f():", "    return total()", *(["total(total(total(" * 250] * 20_000)]
    others = [Lines(f"file:///w/{i}.py", ["count = 1"] * 20_000) for i in range(4)]
    found, took = timed(Rename("count", "total", PY, 1, 11, accepted=True), Lines(PY, lines), others)
    assert took < 0.5 and found == []
