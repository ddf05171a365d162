from tests.unit.test_stages import stream
from vllm_companion.streaming.loop_context import LoopContext
from vllm_companion.streaming.repeat_numbered import MAX_RUN, NumberedLines


def test_numbered_run_is_cut_keeping_three_lines() -> None:
    text = "".join(f"item{i} = load({i})\n" for i in range(1, 40))
    kept = "item1 = load(1)\nitem2 = load(2)\nitem3 = load(3)"
    assert stream(NumberedLines(LoopContext("")), [text]) == (kept, "loop:numbered")


def test_short_numbered_runs_and_table_rows_pass() -> None:
    short = "".join(f"x{i} = {i}\n" for i in range(1, MAX_RUN))
    assert stream(NumberedLines(LoopContext("")), [short])[1] is None
    rows = "".join(f'    "cp{1250 + i}",\n' for i in range(12))
    assert stream(NumberedLines(LoopContext("")), [rows])[1] is None
