"""The two-process engine (engine/paired.py) against the fake engine executable at the process
boundary, each process with its own script: ready with the completion process alone, the
next-edit process started after it, a next-edit process that fails for good (a crash loop, or a
step-down that would make it another model) is stopped and reported while completion keeps
serving, and ``stop`` ends both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fake_engine_command import fake_command, gone
from tests.lsp_session import wait_for
from vllm_companion.engine.paired import Paired, next_edit_launch
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.nextedit_plan import paired
from vllm_companion.engine.planning.plan import plan_launch
from vllm_companion.engine.supervised import EngineEvent, EngineState, Policy
from vllm_companion.engine.supervisor import ProcessSupervisor

FAST = Policy(stall_timeout_s=10, poll_s=0.05, health_interval_s=1, health_failures=10,  # a busy machine is no crash
              backoff_s=(0.05, 0.1, 0.2, 0.4), crash_loop=(3, 60.0), stop_grace_s=3)
PLAN = plan_launch([Gpu(0, "NVIDIA GeForce RTX 3060", 12288, 12288 - 400, (8, 6))])


class Pair:
    def __init__(self, tmp: Path, completion: list[str], next_edit: list[str]) -> None:
        self.events: list[EngineEvent] = []
        self.args = tmp / "args.jsonl"
        second = next_edit_launch(PLAN)
        assert second is not None
        self.pair = Paired(lambda on, yield_card: ProcessSupervisor(
                               paired(PLAN), self.build(tmp / "c.json", completion), tmp / "logs", on, FAST, [],
                               yield_card),
                           lambda on: ProcessSupervisor(second, self.build(tmp / "n.json", next_edit),
                                                        tmp / "logs", on, FAST, []),
                           self.events.append)

    def build(self, script: Path, modes: list[str]):  # type: ignore[no-untyped-def]
        script.write_text(json.dumps(modes))
        return fake_command({"FAKE_ENGINE_SCRIPT": str(script), "FAKE_ENGINE_ARGS": str(self.args)})

    def messages(self) -> str:
        return "\n".join(e.message for e in self.events)


@pytest.fixture
async def pairs() -> AsyncIterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for p in made:
        pids = (p.pair.completion.pid, p.pair.next_edit.pid)
        await p.pair.stop()
        assert all(gone(pid) for pid in pids)


async def wait_until(check, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    await wait_for(check, timeout)


async def test_ready_with_completion_then_next_edit_joins_and_stop_ends_both(tmp_path: Path, pairs: list[Pair]) -> None:
    p = Pair(tmp_path, ["ok"], ["slow"])
    pairs.append(p)
    await p.pair.start()
    assert await p.pair.wait_ready(20)
    assert p.pair.extras().next_edit_endpoint is None  # ready before the next-edit model is
    await wait_until(lambda: p.pair.extras().next_edit_endpoint is not None)
    extras = p.pair.extras()
    assert extras.next_edit_model == "sweepai/sweep-next-edit-1.5B" and extras.next_edit_pid == p.pair.next_edit.pid
    last = p.events[-1]
    assert last.state is EngineState.READY and "next-edit: sweepai/sweep-next-edit-1.5B ready" in last.message
    assert p.events[-1].endpoint == p.pair.completion.endpoint  # the record's endpoint stays the completion one
    pids = (p.pair.completion.pid, p.pair.next_edit.pid)
    await p.pair.stop()
    assert all(gone(pid) for pid in pids) and p.pair.state is EngineState.STOPPED


async def test_a_next_edit_model_that_never_starts_is_reported_and_completion_serves(
    tmp_path: Path, pairs: list[Pair]
) -> None:
    p = Pair(tmp_path, ["ok"], ["crash_start"])
    pairs.append(p)
    await p.pair.start()
    assert await p.pair.wait_ready(20)
    await wait_until(lambda: p.pair.next_edit.state is EngineState.FAILED)
    await wait_until(lambda: "with the generic prompt" in p.events[-1].message)
    assert p.pair.state is EngineState.READY and p.events[-1].state is EngineState.READY
    assert p.pair.extras().next_edit_endpoint is None and "crash loop" in p.events[-1].message


async def test_a_step_down_that_would_make_it_another_model_stops_it(tmp_path: Path, pairs: list[Pair]) -> None:
    """vLLM's free-memory check fails for the next-edit process: the re-plan by arithmetic names a
    completion candidate; a second completion model must never start in its place."""
    p = Pair(tmp_path, ["ok"], ["free_memory", "ok"])
    pairs.append(p)
    await p.pair.start()
    assert await p.pair.wait_ready(20)
    await wait_until(lambda: "no step-down left" in p.messages())
    await wait_until(lambda: p.pair.next_edit.state is EngineState.STOPPED)
    models = [a[a.index("--model") + 1] for a in map(json.loads, p.args.read_text().splitlines())]
    assert set(models) == {PLAN.model, "sweepai/sweep-next-edit-1.5B:Q8_0"}  # no second completion model
    assert models.count("sweepai/sweep-next-edit-1.5B:Q8_0") == 1  # and no restart of it
    assert p.pair.state is EngineState.READY


def test_plans_without_a_next_edit_model_keep_one_process() -> None:
    assert next_edit_launch(plan_launch([])) is None  # CPU
    assert next_edit_launch(replace(PLAN, next_edit=None)) is None  # a step-down, or set by hand
    second = next_edit_launch(PLAN)
    assert second is not None and second.enforce_eager and second.port is None and second.host == "127.0.0.1"
