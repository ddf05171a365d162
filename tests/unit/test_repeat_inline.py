from tests.unit.test_stages import stream
from vllm_companion.streaming.loop_context import LoopContext
from vllm_companion.streaming.repeat_inline import InlineRepeat


def chars(text: str) -> list[str]:
    return list(text)


def test_units_of_each_length() -> None:
    assert stream(InlineRepeat(LoopContext("")), chars("x = foo(" + "foo(" * 30))[1] == "loop:inline"
    assert stream(InlineRepeat(LoopContext("")), chars("ok\ny = " + "▅" * 40)) == ("ok", "loop:inline")
    assert stream(InlineRepeat(LoopContext("")), chars("z = [" + "item_value, " * 10))[1] == "loop:inline"


def test_rulers_digits_and_short_runs_pass() -> None:
    assert stream(InlineRepeat(LoopContext("")), chars("# " + "=" * 78))[1] is None
    assert stream(InlineRepeat(LoopContext("")), chars("MASK = 0x" + "f" * 16))[1] is None
    assert stream(InlineRepeat(LoopContext("")), chars("t = (0, 0, 0, 0, 0)"))[1] is None
    assert stream(InlineRepeat(LoopContext("")), chars("if self" + "." * 40))[1] == "loop:inline"
