"""The two-process engine (engine/paired.py) once its next-edit process has given up (a gated
model: failed for good), against the fake engine executable: a restart of the completion process
keeps saying that next edits use the completion model (the READY after it lost the note), and a
fresh ``start`` after ``stop`` tries the next-edit process again (the give-up was kept for ever)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_paired_restart import Pair, pairs  # noqa: F401
from tests.fake_engine_command import gone
from tests.lsp_session import wait_for
from vllm_companion.engine.supervised import EngineState

STOPPED_NOTE = "next-edit: sweepai/sweep-next-edit-1.5B stopped ("


async def gave_up(p: Pair) -> None:
    await p.pair.start()
    assert await p.pair.wait_ready(30)
    await wait_for(lambda: p.pair.next_edit.state is EngineState.FAILED, 30)
    await wait_for(lambda: STOPPED_NOTE in p.events[-1].message, 10)


async def test_a_completion_restart_after_the_next_edit_process_gave_up_still_says_so(
    tmp_path: Path, pairs: list[Pair]  # noqa: F811
) -> None:
    p = Pair(tmp_path, ["ok"], ["gated"])
    pairs.append(p)
    await gave_up(p)
    p.crash_completion()
    await wait_for(lambda: len(p.beside) == 2 and p.pair.state is EngineState.READY, 30)
    ready = [e for e in p.events if e.state is EngineState.READY][-1]
    assert ready.endpoint == p.pair.completion.endpoint  # the restarted process's
    assert STOPPED_NOTE in ready.message and "generic prompt" in ready.message
    assert "gated" in ready.message.lower() or "401" in ready.message
    assert not p.pair._yielded  # the card was never taken from a process that was not running
    assert len(p.launches()) == 3  # completion, next-edit (gated), completion: it is not tried again


async def test_a_fresh_start_after_stop_tries_the_next_edit_process_again(
    tmp_path: Path, pairs: list[Pair]  # noqa: F811
) -> None:
    p = Pair(tmp_path, ["ok"], ["gated", "ok"])
    pairs.append(p)
    await gave_up(p)
    pid = p.pair.completion.pid
    await p.pair.stop()
    assert gone(pid)
    await p.pair.start()  # (wait_ready at once would see the completion process's last stop: manager.py builds anew)
    await wait_for(lambda: p.pair.state is EngineState.READY, 30)
    await p.next_edit_ready()
    assert "ready at" in p.events[-1].message and "generic prompt" not in p.events[-1].message
    assert p.pair.extras().next_edit_model == "sweepai/sweep-next-edit-1.5B"
