from tests.unit.test_stages import stream
from vllm_companion.streaming.repeat_inline import InlineRepeat


def chars(text: str) -> list[str]:
    return list(text)


def test_units_of_each_length() -> None:
    assert stream(InlineRepeat(), chars("x = foo(" + "foo(" * 30))[1] == "loop:inline"
    assert stream(InlineRepeat(), chars("ok\ny = " + "▅" * 40)) == ("ok", "loop:inline")
    assert stream(InlineRepeat(), chars("z = [" + "item_value, " * 10))[1] == "loop:inline"


def test_rulers_digits_and_short_runs_pass() -> None:
    assert stream(InlineRepeat(), chars("# " + "=" * 78))[1] is None
    assert stream(InlineRepeat(), chars("MASK = 0x" + "f" * 16))[1] is None
    assert stream(InlineRepeat(), chars("t = (0, 0, 0, 0, 0)"))[1] is None
    assert stream(InlineRepeat(), chars("if self" + "." * 40))[1] == "loop:inline"
