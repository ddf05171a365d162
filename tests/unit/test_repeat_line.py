from tests.unit.test_stages import stream
from vllm_companion.streaming.loop_context import LoopContext
from vllm_companion.streaming.repeat_line import RepeatedLine


def test_third_copy_is_recognised_from_its_start() -> None:
    long = "self.assertEqual(compute(alpha, beta), expected_value)"
    text, reason = stream(RepeatedLine(LoopContext("")), [long + "\n", long + "\n", long[:14]])
    assert (text, reason) == (long, "loop:line")


def test_short_lines_and_two_copies_pass() -> None:
    assert stream(RepeatedLine(LoopContext("")), ["}\n}\n}\n}\n"])[1] is None
    assert stream(RepeatedLine(LoopContext("")), ["flush()\nflush()\nclose()\n"])[1] is None


def test_configurable_occurrences() -> None:
    assert stream(RepeatedLine(LoopContext(""), occurrences=2), ["go(x)\ngo(x)\n"])[1] == "loop:line"


def test_lines_the_file_repeats_may_run_longer() -> None:
    ctx = LoopContext.from_prefix("x\n    emit(row)\n    emit(row)\n    emit(row)\n")
    assert stream(RepeatedLine(ctx), ["emit(row)\n" * 5])[1] is None
    assert stream(RepeatedLine(ctx), ["emit(row)\n" * 12])[1] == "loop:line"
