"""The life every composite engine shares (engine/supervised.py ``Composite``: fleet.py, fronted.py,
paired.py): ``stop`` cancels and awaits its run and every task its event handlers started (none
left pending for "Task was destroyed but it is pending"), then stops its parts stage by stage."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import pytest

from vllm_companion.engine.supervised import Composite, EngineState, Extras, Supervised


class Part:
    """A supervised part that notes when its stop began and ended."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log
        self.state, self.pid, self.port, self.log_path = EngineState.READY, None, None, Path("x")

    async def start(self) -> None: ...
    async def wait_ready(self, timeout_s: float) -> bool:
        return True

    async def stop(self) -> None:
        self.log.append(f"{self.name} stopping")
        await asyncio.sleep(0.01)
        self.log.append(f"{self.name} stopped")
        self.state = EngineState.STOPPED

    def extras(self) -> Extras:
        return Extras()

    def describe(self) -> str | None:
        return None


class Two(Composite):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.front, self.a, self.b = Part("front", log), Part("a", log), Part("b", log)
        self.ran = asyncio.Event()

    @property
    def primary(self) -> Supervised:
        return self.a

    async def _run(self) -> None:
        self.ran.set()
        await asyncio.sleep(3600)  # a watch that runs as long as the engine

    def _stop_order(self) -> list[list[Supervised]]:
        return [[self.front], [self.a, self.b]]


async def test_stop_cancels_and_awaits_its_tasks_then_stops_the_parts_stage_by_stage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    two = Two(log)
    await two.start()
    await two.ran.wait()
    helper = asyncio.Event()

    async def handler_work() -> None:  # what an event handler started (paired.py: a next-edit stop)
        helper.set()
        await asyncio.sleep(3600)

    two._spawn(handler_work())
    await helper.wait()
    run = two._task
    await two.stop()
    assert run is not None and run.cancelled() and not two._tasks
    assert log[:2] == ["front stopping", "front stopped"]  # the first stage ends before the next begins
    assert sorted(log[2:4]) == ["a stopping", "b stopping"]  # a stage's parts stop together
    assert two.pid is None and two.log_path == Path("x")  # named by its primary
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
        await asyncio.sleep(0)
    assert "Task was destroyed" not in caplog.text


async def test_start_after_stop_runs_again() -> None:
    two = Two([])
    await two.start()
    await two.ran.wait()
    await two.stop()
    two.ran.clear()
    await two.start()
    await asyncio.wait_for(two.ran.wait(), 5)
    assert not two._stopping
    await two.stop()
