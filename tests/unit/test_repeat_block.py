from tests.unit.test_stages import stream
from vllm_companion.streaming.loop_context import LoopContext
from vllm_companion.streaming.repeat_block import RepeatedBlock


def test_big_block_cut_at_first_repeat_small_block_at_second() -> None:
    big = "response = session.get(url, timeout=30)\nresponse.raise_for_status()\nrows = response.json()\n"
    assert stream(RepeatedBlock(LoopContext("")), [big * 2 + "x = 1\n"]) == (big.rstrip("\n"), "loop:block")
    small = "a = 1\nb = 2\n"
    assert stream(RepeatedBlock(LoopContext("")), [small * 2 + "c = 3\n"])[1] is None
    assert stream(RepeatedBlock(LoopContext("")), [small * 3])[1] == "loop:block"


def test_similar_method_bodies_are_not_a_loop() -> None:
    text = (
        "def a(self):\n    self.check()\n    return self.value\n\n"
        "def b(self):\n    self.check()\n    return self.value\n\n"
    )
    assert stream(RepeatedBlock(LoopContext("")), [text])[1] is None
