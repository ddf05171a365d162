"""Each next-edit family's prompt against its golden file, its parser on real-shaped answers
(including sentinel leaks, the no-edit marker and truncation), and family detection.

Regenerate goldens after an intended change: ``python -m tests.unit.test_nextedit_formats --update``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vllm_companion.nextedit.formats import BY_NAME, FORMATS, detect_family
from vllm_companion.nextedit.parse import parse_answer
from vllm_companion.nextedit.types import NextEditInput, RecordedEdit, Region

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "nextedit"
# The user renamed ``name`` to ``who`` in the signature; the next edit renames its use below.
REGION = Region(
    uri="file:///w/hello.py", path="hello.py", language_id="python", start_row=2, end_row=5,
    text='def greet(who):\n    """Say hello to 宇宙 🚀."""\n    return "hi " + name',
    cursor_row=2, cursor_col=13, before="import sys\n", after="\nprint(greet('ada'))",
)
HISTORY = (
    RecordedEdit("file:///w/util.py", "util.py", 0, "X = 1", "X = 2", accepted=True),
    RecordedEdit("file:///w/hello.py", "hello.py", 2, "\ndef greet(name):", "\ndef greet(who):"),
)
INPUT = NextEditInput(REGION, HISTORY)
NEW = 'def greet(who):\n    """Say hello to 宇宙 🚀."""\n    return "hi " + who'


def _golden(name: str) -> Path:
    fmt = BY_NAME[name]
    return GOLDEN / (f"{name}.json" if fmt.chat else f"{name}.txt")


def _rendered(name: str) -> str:
    prompt = BY_NAME[name].render(INPUT)
    return prompt if isinstance(prompt, str) else json.dumps(prompt, indent=1, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", list(BY_NAME))
def test_family_prompt_matches_golden(name: str) -> None:
    assert _rendered(name) == _golden(name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(BY_NAME))
def test_prompt_marks_the_cursor_once_and_ends_with_the_region(name: str) -> None:
    text = _rendered(name)
    cursor = {"sweep": "<|cursor|>", "zeta": "<|user_cursor_is_here|>", "instinct": "<|user_cursor_is_here|>"}
    in_instructions = int(name in ("instinct", "generic"))  # their system message names the marker
    assert text.count(cursor.get(name, "<|user_cursor|>")) == 1 + in_instructions
    assert "def greet(who" in text[-600:]  # the region is near the end: a stable head for prefix caching


# A correct answer per family, as the model writes it (end marker included where the engine
# leaves it in; the cursor marker copied back, as models do).
GOOD = {
    "sweep": NEW + "\n",
    "zeta": "```hello.py\n<|start_of_file|>\nimport sys\n\n<|editable_region_start|>\n"
    + NEW.replace("(who)", "(who<|user_cursor_is_here|>)") + "\n<|editable_region_end|>",
    "zeta2": NEW + "\n>>>>>>> UPDATED\n",
    "instinct": NEW,
    "generic": "```python\n" + NEW + "\n```",
}


@pytest.mark.parametrize("name", list(BY_NAME))
def test_parser_returns_the_new_region(name: str) -> None:
    assert parse_answer(name, GOOD[name], finished=True) == NEW


@pytest.mark.parametrize("name", list(BY_NAME))
def test_truncated_answer_is_no_edit(name: str) -> None:
    assert parse_answer(name, GOOD[name][: len(GOOD[name]) // 2], finished=False) is None


LEAKS = {
    "sweep": NEW + "\n<|file_sep|>original/hello.py:2:5\n",
    "zeta": "<|editable_region_start|>\n" + NEW + "\n<|editable_region_start|>\n",
    "zeta2": NEW + "\n=======\n>>>>>>> UPDATED\n",
    "instinct": NEW + "\n<|editable_region_end|>\n<|editable_region_end|>",
    "generic": "```python\n<|editable_region_start|>\n" + NEW + "\n```",
}


@pytest.mark.parametrize("name", list(BY_NAME))
def test_sentinel_text_never_leaks_into_an_edit(name: str) -> None:
    assert parse_answer(name, LEAKS[name], finished=True) is None


@pytest.mark.parametrize(("name", "answer"), [("zeta2", "NO_EDITS\n>>>>>>> UPDATED\n"), ("generic", "NO_EDIT"),
                                              ("generic", "```\nNO_EDIT\n```")])
def test_no_edit_marker_is_none(name: str, answer: str) -> None:
    assert parse_answer(name, answer, finished=True) is None


def test_zeta_without_start_marker_is_garbled() -> None:
    assert parse_answer("zeta", NEW + "\n<|editable_region_end|>", finished=True) is None


def test_generic_prose_is_not_a_region() -> None:
    assert parse_answer("generic", "You should rename name to who.", finished=True) is None


def test_instinct_fenced_answer_with_markers_is_unwrapped() -> None:
    answer = "```python\n<|editable_region_start|>\n" + NEW + "\n<|editable_region_end|>\n```"
    assert parse_answer("instinct", answer, finished=True) == NEW


def test_instinct_keeps_a_region_that_ends_in_a_blank_line() -> None:
    """Continue's extractCompletion returns the message unchanged: the final "\\n" is the region's
    blank last line, not padding (the bench's replayed Instinct row lost these cases)."""
    assert parse_answer("instinct", NEW + "\n", finished=True) == NEW + "\n"
    assert parse_answer("instinct", "\n" + NEW + "\n\n", finished=True) == "\n" + NEW + "\n\n"


FENCED_DOC = 'def f(x):\n    """Use it so:\n\n    ```\n    f(1)\n    ```\n    """\n    return x'


@pytest.mark.parametrize("name", ["instinct", "generic"])
def test_a_fence_inside_the_region_is_not_taken_for_the_answer(name: str) -> None:
    answer = FENCED_DOC if name == "instinct" else f"```python\n{FENCED_DOC}\n```"
    assert parse_answer(name, answer, finished=True) == FENCED_DOC


@pytest.mark.parametrize("name", ["zeta2", "zeta", "sweep", "instinct"])
def test_a_comment_ruler_is_code_not_a_conflict_marker(name: str) -> None:
    """Zeta 2's markers are ``<<<<<<< CURRENT``, a ``=======`` line and ``>>>>>>> UPDATED``; a region's
    "# =======" ruler is the user's code (the bench's replayed zeta2 row lost such a case)."""
    ruler = "# " + "=" * 70 + "\n" + NEW
    zeta = GOOD["zeta"].replace("def greet", ruler.split("(")[0])
    answers = {"zeta2": ruler + "\n>>>>>>> UPDATED\n", "zeta": zeta, "sweep": ruler + "\n", "instinct": ruler}
    assert parse_answer(name, answers[name], finished=True) == ruler


def test_instinct_fenced_whole_answer_is_unwrapped() -> None:
    assert parse_answer("instinct", f"```python\n{FENCED_DOC}\n```\n", finished=True) == FENCED_DOC


@pytest.mark.parametrize(("cursor_row", "span"), [(2, "1:4"), (3, "2:5"), (4, "3:6"), (9, "3:6")])
def test_sweep_headers_number_from_the_cursor_line(cursor_row: int, span: str) -> None:
    """Sweep's server writes ``{s}:{e}`` = the cursor's 1-based line in the block, then that plus the
    block's line count (not file lines); a cursor past the block is clamped into it."""
    region = Region(REGION.uri, REGION.path, "python", 2, 5, REGION.text, cursor_row, 0)
    prompt = BY_NAME["sweep"].render(NextEditInput(region, ()))
    assert isinstance(prompt, str)
    for block in ("original", "current", "updated"):
        assert f"<|file_sep|>{block}/hello.py:{span}\n" in prompt


@pytest.mark.parametrize(
    ("model_id", "setting", "family"),
    [
        ("sweepai/sweep-next-edit-1.5B", "auto", "sweep"),
        ("zed-industries/zeta", "auto", "zeta"),
        ("zed-industries/zeta-2", "auto", "zeta2"),
        ("continuedev/instinct", "auto", "instinct"),
        ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "auto", "generic"),
        ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "zeta", "zeta"),  # the setting wins
        ("sweepai/sweep-next-edit-1.5B", "generic", "generic"),
        ("my-finetune", "no-such-family", "generic"),
    ],
)
def test_family_detection(model_id: str, setting: str, family: str) -> None:
    assert detect_family(model_id, setting).name == family


def test_every_family_names_its_source() -> None:
    assert all(f.source for f in FORMATS) and {f.name for f in FORMATS} == set(GOOD)


if __name__ == "__main__" and "--update" in sys.argv:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for family in BY_NAME:
        _golden(family).write_text(_rendered(family), encoding="utf-8")
