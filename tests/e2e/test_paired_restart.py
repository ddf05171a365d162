"""The two-process engine (engine/paired.py) when its completion process restarts, against the fake
engine executable at the process boundary, with the card's facts injected as NVML reports them:
the next-edit process gives the card up before the completion process starts again (so that
one's memory profile never counts it) and follows it once it is ready, and a step-down from
vLLM's free-memory figure leaves the next-edit process its share (``LaunchPlan.reserved``), so it
starts again at its own share instead of being given up."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fake_engine_command import fake_command, gone
from tests.lsp_session import wait_for
from vllm_companion.engine.command import EngineCommand
from vllm_companion.engine.paired import Paired, next_edit_launch
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.nextedit_plan import paired
from vllm_companion.engine.planning.plan import LaunchPlan, plan_launch
from vllm_companion.engine.supervised import EngineEvent, EngineState, Policy
from vllm_companion.engine.supervisor import ProcessSupervisor

FAST = Policy(stall_timeout_s=10, poll_s=0.05, health_interval_s=0.2, health_failures=10,
              backoff_s=(0.05, 0.1, 0.2, 0.4), crash_loop=(4, 60.0), stop_grace_s=3)
GPUS = [Gpu(0, "NVIDIA GeForce RTX 3060", 12288, 12288 - 400, (8, 6))]  # what NVML reported at planning
PLAN = plan_launch(GPUS)
NEXT_EDIT = "sweepai/sweep-next-edit-1.5B:Q8_0"


class Pair:
    """A pair whose completion launches note whether the next-edit process was still running."""

    def __init__(self, tmp: Path, completion: list[str], next_edit: list[str]) -> None:
        self.events: list[EngineEvent] = []
        self.args = tmp / "args.jsonl"
        self.beside: list[bool] = []  # per completion launch: a next-edit process alive at that moment
        second = next_edit_launch(PLAN)
        assert second is not None
        first = self.build(tmp / "c.json", completion)

        def build_completion(plan: LaunchPlan, port: int) -> EngineCommand:
            pid = self.pair.next_edit.pid
            self.beside.append(pid is not None and not gone(pid))
            return first(plan, port)

        self.pair = Paired(lambda on, yield_card: ProcessSupervisor(paired(PLAN), build_completion, tmp / "logs",
                                                                    on, FAST, GPUS, yield_card),
                           lambda on: ProcessSupervisor(second, self.build(tmp / "n.json", next_edit), tmp / "logs",
                                                        on, FAST, []),
                           self.events.append)

    def build(self, script: Path, modes: list[str]):  # type: ignore[no-untyped-def]
        script.write_text(json.dumps(modes))
        return fake_command({"FAKE_ENGINE_SCRIPT": str(script), "FAKE_ENGINE_ARGS": str(self.args)})

    def launches(self) -> list[list[str]]:
        return [json.loads(x) for x in self.args.read_text().splitlines()]

    async def next_edit_ready(self) -> None:
        await wait_for(lambda: self.pair.extras().next_edit_endpoint is not None, 30)

    def crash_completion(self) -> None:
        """The completion engine dies as vLLM's does on a CUDA error at run time: at once, no word."""
        pid = self.pair.completion.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def pairs() -> AsyncIterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for p in made:
        pids = (p.pair.completion.pid, p.pair.next_edit.pid)
        await p.pair.stop()
        assert all(gone(pid) for pid in pids) and not p.pair._tasks


def arg(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


async def test_the_next_edit_process_gives_the_card_up_before_the_completion_process_restarts(
    tmp_path: Path, pairs: list[Pair]
) -> None:
    p = Pair(tmp_path, ["ok"], ["ok"])
    pairs.append(p)
    await p.pair.start()
    assert await p.pair.wait_ready(30)
    await p.next_edit_ready()
    first_next_edit = p.pair.next_edit.pid
    p.crash_completion()
    await wait_for(lambda: len(p.beside) == 2, 30)
    assert p.beside == [False, False]  # the restart found the card without it (it ran before the crash)
    assert first_next_edit is not None and gone(first_next_edit)
    await p.next_edit_ready()  # and it follows the completion process again, at its own share
    models = [arg(a, "--model") for a in p.launches()]
    assert models == [PLAN.model, NEXT_EDIT, PLAN.model, NEXT_EDIT]
    assert p.pair.next_edit.pid != first_next_edit and p.pair.state is EngineState.READY
    assert "ready at" in p.events[-1].message and "generic prompt" not in p.events[-1].message


async def test_a_free_memory_step_down_leaves_the_next_edit_process_its_share(
    tmp_path: Path, pairs: list[Pair]
) -> None:
    """vLLM found 6.92 of 8 GiB free when the completion process started again: its new share is
    what that leaves less the next-edit reservation, not all of it, and the next-edit process
    starts again beside it at its own share."""
    p = Pair(tmp_path, ["ok", "free_memory", "ok"], ["ok"])
    pairs.append(p)
    await p.pair.start()
    assert await p.pair.wait_ready(30)
    await p.next_edit_ready()
    p.crash_completion()
    await wait_for(lambda: len(p.launches()) == 5, 40)
    await p.next_edit_ready()
    shares = [(arg(a, "--model"), float(arg(a, "--gpu-memory-utilization"))) for a in p.launches()]
    completion = [s for m, s in shares if m != NEXT_EDIT]
    next_edit = [s for m, s in shares if m == NEXT_EDIT]
    reserved = paired(PLAN).reserved
    free_share = round((6.92 - 0.25) / 8.0 - 0.005, 2)  # diagnose.py's figure from vLLM's message
    assert reserved > 0 and completion[-1] == round(free_share - reserved, 2)
    assert completion[-1] + reserved <= free_share  # room left for the next-edit process
    assert next_edit == [next_edit[0]] * 2 and len(next_edit) == 2  # started again, at its own share
    assert p.pair.extras().next_edit_model == "sweepai/sweep-next-edit-1.5B"
