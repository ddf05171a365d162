"""turns.py: a chat steps aside while completions run, resumes after a quiet spell, and never
starves (MAX_WAIT_S, then MIN_RUN_S without stepping aside)."""

from __future__ import annotations

import asyncio
import time

import pytest

from vllm_companion import turns as turns_module
from vllm_companion.turns import Turns


@pytest.fixture(autouse=True)
def short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turns_module, "QUIET_S", 0.05)
    monkeypatch.setattr(turns_module, "MAX_WAIT_S", 0.3)
    monkeypatch.setattr(turns_module, "MIN_RUN_S", 0.2)


async def test_the_chat_yields_while_a_completion_runs_and_resumes_after_a_quiet_spell() -> None:
    turns = Turns()
    assert not turns.chat_should_yield()
    with turns.completing():
        assert turns.chat_should_yield()
        began = asyncio.ensure_future(turns.completion_began())
        await asyncio.sleep(0)
        assert began.done()
        waiting = asyncio.ensure_future(turns.wait_for_chat_turn())
        await asyncio.sleep(0.1)
        assert not waiting.done()  # still completing
    t0 = time.monotonic()
    await waiting
    assert 0.03 <= time.monotonic() - t0 < 0.2  # the quiet spell, not the bound
    assert not turns.chat_should_yield()


async def test_a_chat_is_never_starved() -> None:
    turns = Turns()
    with turns.completing():  # the user types on and on
        t0 = time.monotonic()
        await turns.wait_for_chat_turn()
        assert 0.28 <= time.monotonic() - t0 < 0.5  # MAX_WAIT_S
        assert not turns.chat_should_yield()  # MIN_RUN_S: the chat runs a while
        began = asyncio.ensure_future(turns.completion_began())
        await asyncio.sleep(0.1)
        assert not began.done()
        await asyncio.wait_for(began, 0.5)  # after MIN_RUN_S it steps aside again
