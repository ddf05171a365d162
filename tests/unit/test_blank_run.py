from tests.unit.test_stages import stream
from vllm_companion.streaming.blank_run import BlankRun


def test_blank_lines_and_space_runs() -> None:
    assert stream(BlankRun(), ["a()\n"] + ["\n"] * 10) == ("a()", "loop:blank")
    assert stream(BlankRun(), ["a()\n\n\n\nclass B:\n"])[1] is None  # three blank lines happen
    assert stream(BlankRun(), ["x("] + [" " * 8] * 20) == ("x(", "loop:blank")
