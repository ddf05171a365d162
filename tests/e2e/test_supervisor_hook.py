"""The supervisor's ``before_restart`` hook (engine/supervisor.py; engine/paired.py gives the card
up in it) is best-effort: one that raises is logged and the restart goes on. It ended the
supervision loop silently, the state stuck at RESTARTING, the completion process never back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.e2e.test_supervisor import FAST, GPU_PLAN, Harness, harnesses  # noqa: F401
from tests.fake_engine_command import fake_command
from tests.lsp_session import wait_for
from vllm_companion.engine.supervised import EngineState
from vllm_companion.engine.supervisor import ProcessSupervisor


async def test_a_before_restart_hook_that_raises_does_not_stop_the_restart(
    tmp_path: Path, harnesses: list[Harness], caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    h = Harness(tmp_path, ["crash_start", "ok"])
    calls: list[int] = []

    async def hook() -> None:
        calls.append(len(calls))
        raise RuntimeError("the guest could not be stopped")

    env = {"FAKE_ENGINE_SCRIPT": str(h.script), "FAKE_ENGINE_ARGS": str(h.args)}
    h.sup = ProcessSupervisor(GPU_PLAN, fake_command(env), tmp_path / "logs", h.events.append, FAST, [], hook)
    harnesses.append(h)
    with caplog.at_level(logging.ERROR, logger="vllm_companion.engine.supervisor"):
        await h.sup.start()
        assert await h.sup.wait_ready(20)
    await wait_for(lambda: h.sup.state is EngineState.READY, 5)
    assert calls == [0] and len(h.starts()) == 2
    assert h.states()[-1] == "ready" and "restarting" in h.states()
    logged = [r for r in caplog.records if "the guest could not be stopped" in (r.exc_text or r.getMessage())]
    assert logged and logged[0].exc_info is not None  # logged with the exception
