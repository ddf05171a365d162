"""How supervisor tests start tests/fake_engine.py in place of the engine, and see it gone:
shared by tests/e2e/test_supervisor.py and test_paired_supervision.py (the engine's own command
line, built by engine/command.py, behind the fake's executable, with the fake's settings)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from vllm_companion.engine.command import EngineCommand, build_command
from vllm_companion.engine.planning.plan import LaunchPlan

FAKE = [sys.executable, str(Path(__file__).resolve().parent / "fake_engine.py")]


def fake_command(env: dict[str, str]) -> Callable[[LaunchPlan, int], EngineCommand]:
    """A supervisor's command builder that runs the fake engine with ``env`` added."""
    def build(launch: LaunchPlan, port: int) -> EngineCommand:
        cmd = build_command(launch, port, launch.model, prefix=FAKE)
        return EngineCommand(cmd.argv, {**cmd.env, **env})

    return build


def gone(pid: int | None) -> bool:
    """No process is left in ``pid``'s group (the supervisor starts each engine as a group leader)."""
    try:
        os.killpg(pid or 0, 0)
    except ProcessLookupError:
        return True
    return False
