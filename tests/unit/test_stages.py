"""One focused test per stream stage (each stage is small and deterministic)."""

from __future__ import annotations

from vllm_companion.streaming import Pipeline
from vllm_companion.streaming.finish import drop_suffix_overlap, imbalance, tidy
from vllm_companion.streaming.indent_scope import IndentScope
from vllm_companion.streaming.max_lines import MaxLines
from vllm_companion.streaming.single_line import SingleLine
from vllm_companion.streaming.stop_sequences import StopSequences
from vllm_companion.streaming.suffix_retype import SuffixRetype


def stream(stage: object, chunks: list[str]) -> tuple[str, str | None]:
    pipe = Pipeline([stage])  # type: ignore[list-item]
    for chunk in chunks:
        if pipe.feed(chunk):
            break
    pipe.close()
    return pipe.text, pipe.cut.reason if pipe.cut else None


def test_stop_sequence_straddling_chunks() -> None:
    assert stream(StopSequences(["<|endoftext|>"]), ["ab<|endo", "ftext|>cd"]) == ("ab", "stop")


def test_stop_sequences_earliest_wins_and_no_stops_is_a_no_op() -> None:
    assert stream(StopSequences(["</s>", "<EOT>"]), ["x<EOT>y</s>"]) == ("x", "stop")
    assert stream(StopSequences([]), ["x</s>"]) == ("x</s>", None)


def test_single_line_only_when_code_follows_the_cursor() -> None:
    assert stream(SingleLine(")"), ["a, b\nc"]) == ("a, b", "single-line")
    assert stream(SingleLine("  "), ["a\nb"]) == ("a\nb", None)


def test_max_lines() -> None:
    assert stream(MaxLines(2), ["1\n2\n3\n"]) == ("1\n2", "max-lines")
    assert stream(MaxLines(5), ["1\n2"]) == ("1\n2", None)


def test_suffix_retype_cuts_before_the_repeated_line() -> None:
    assert stream(SuffixRetype("    return y\n", "    "), ["y = 1\n    return y\n"]) == ("y = 1", "suffix-retype")


def test_suffix_retype_compares_indentation() -> None:
    # an inner "}" is not the outer "}" that follows the cursor
    assert stream(SuffixRetype("}\n", "  "), ["if (x) {\n    y();\n  }\n"]) == ("if (x) {\n    y();\n  }\n", None)


def test_suffix_retype_at_the_cursor_drops_everything() -> None:
    assert stream(SuffixRetype("print(x)\n", ""), ["print(x)\n"]) == ("", "suffix-retype")


def test_indent_scope_keeps_nested_blocks_and_stops_at_dedent() -> None:
    text = "if a:\n        b()\n    c()\nd()\n"
    assert stream(IndentScope("    "), [text]) == ("if a:\n        b()\n    c()", "scope-end")


def test_indent_scope_user_started_opener_scopes_to_its_body() -> None:
    assert stream(IndentScope("    if a:"), ["\n        b()\n    c()\n"]) == ("\n        b()", "scope-end")


def test_indent_scope_top_level_paragraph() -> None:
    assert stream(IndentScope(""), ["x = 1\ny = 2\n\nz = 3\n"]) == ("x = 1\ny = 2\n", "scope-end")


def test_indent_scope_ignores_the_models_extra_space_at_the_indentation() -> None:
    """A C macro continued at the cursor's indentation: the model's leading space does not make
    the next line look dedented (tabs likewise)."""
    text = " sizeof(tname),  \\\n        sizeof(selname),  \\\n}\n"
    kept = " sizeof(tname),  \\\n        sizeof(selname),  \\\n}"
    assert stream(IndentScope("        "), [text]) == (kept, "scope-close")
    assert stream(IndentScope("\t\t "), [" int a,\n\t\t int b);\n"])[0] == " int a,\n\t\t int b);\n"


def test_indent_scope_keeps_closing_bracket() -> None:
    assert stream(IndentScope("int f() {"), ["\n  return 1;\n}\nint g;\n"]) == ("\n  return 1;\n}", "scope-close")


def test_bracket_imbalance() -> None:
    assert imbalance("f(a[1])") == 0
    assert imbalance("f(a))") == 1
    assert imbalance("f((") == 2


def test_drop_suffix_overlap_only_when_it_balances() -> None:
    assert drop_suffix_overlap("len(xs))", "print(", ")") == "len(xs)"
    assert drop_suffix_overlap("g()", "print(", ")") == "g()"
    assert drop_suffix_overlap("a, b", "f(", ")") == "a, b"
    assert drop_suffix_overlap(")", "f(", ")") == ""


def test_tidy() -> None:
    assert tidy("  \n ", "") == ""
    assert tidy("a\nb\n\n", "") == "a\nb"
    assert tidy("x   ", "") == "x"
    assert tidy("x ", ")") == "x "
