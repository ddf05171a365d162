"""The completion model and a next-edit model in two vLLM processes on one card, supervised as one
engine (engine/supervised.py; issue 22, "Engine, plans, scheduling").

Where the plan has room (engine/planning/nextedit_plan.py: ``LaunchPlan.next_edit``), the
completion process runs at its smaller share and context (``paired(plan)``), and the next-edit
model (Sweep next-edit, GGUF Q8_0, with its base model's tokenizer) runs in a second vLLM process
at its own share (vLLM's ``--gpu-memory-utilization`` is per instance), each on a free port of
its own on loopback, each under the guard (the next-edit one ``--member``: it stops with the
engine, engine/guard.py). The manager, the record and the command line see one engine:

- it is ready when the completion process is: completion never waits for next-edit;
- the next-edit process starts once the completion process is ready, not beside its start: vLLM
  sizes its KV cache from a memory profile of the whole device taken while it starts, so memory a
  second process takes meanwhile would be counted against the first (the planner keeps
  ``SECOND_PROCESS_MIB`` for that process's CUDA context, outside both shares);
- its failure never takes completion down: its own supervisor restarts it (back-off, crash loop);
  when it fails for good, or a step-down would turn it into another model (a free-memory re-plan
  names a completion candidate), it is stopped and reported (again with each "ready" of a restarted
  completion process; a fresh ``start`` after ``stop`` tries it again), and next-edit requests go
  to the completion model with the generic prompt (nextedit/model.py);
- when the completion process restarts (a crash, a step-down after an OOM), the next-edit process
  is stopped first (the supervisor's ``before_restart``) and started again once the completion
  process is ready: the same order as the first start, so the completion process's memory profile
  never counts the other process, and vLLM's free-memory figure, which its step-downs size from
  (engine/planning/diagnose.py), holds the next-edit share too; those step-downs leave that share
  to the next-edit process (``LaunchPlan.reserved``), so it still fits when it starts again;
- ``extras`` names its guard, and its endpoint and served name while it is ready, so the record
  (engine/record.py) tells the editors that attach where it is;
- ``stop`` stops both, and every task the event handlers started (engine/supervised.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from .planning.plan import LaunchPlan
from .supervised import Composite, EngineEvent, EngineState, Extras, Supervised
from .supervisor import ProcessSupervisor

log = logging.getLogger(__name__)
OnEvent = Callable[[EngineEvent], None]
Make = Callable[[OnEvent], ProcessSupervisor]
# The completion supervisor's: its events, and what it awaits before each restart (Paired._yield_card).
MakeFirst = Callable[[OnEvent, Callable[[], Awaitable[None]]], ProcessSupervisor]


def next_edit_launch(main: LaunchPlan) -> LaunchPlan | None:
    """The next-edit process's plan from ``main``'s choice (its share, context and batch, eager,
    ``repo:Q8_0``), or None when the plan keeps one process (a CPU plan, no room, set by hand)."""
    choice = main.next_edit
    if main.device != "cuda" or choice is None or not choice.model or not choice.weights:
        return None
    return LaunchPlan(
        engine="vllm", device="cuda", model=choice.weights, served_name=choice.model, dtype=main.dtype,
        gpu_memory_utilization=choice.gpu_memory_utilization, max_model_len=choice.max_model_len,
        max_num_seqs=choice.max_num_seqs, enforce_eager=True, host="127.0.0.1", port=None,
        reason=choice.reason, arithmetic=choice.arithmetic)


class Paired(Composite):
    """The completion process and the next-edit process, seen by the manager as one supervised
    engine (module doc): pid, port, log and readiness are the completion process's."""

    def __init__(self, make_completion: MakeFirst, make_next_edit: Make, on_event: OnEvent) -> None:
        super().__init__()
        self.on_event = on_event
        self.completion = make_completion(self._completion_event, self._yield_card)
        self.next_edit = make_next_edit(self._next_edit_event)
        self.model = self.next_edit.plan.model  # what the next-edit process must keep serving
        self._fresh()

    def _fresh(self) -> None:
        """What a run learns, forgotten at each start (supervised.py ``Composite.start``): after a stop, a
        next-edit process given up is tried again."""
        self._ready: EngineEvent | None = None  # the completion process's last "ready"
        self._seen: EngineState | None = None  # the next-edit process's last state reported
        self._gave_up = ""  # why the next-edit process was stopped for good ("": it runs beside completion)
        self._yielded = False  # stopped for the completion process's restart, until that one is ready

    @property
    def primary(self) -> Supervised:
        return self.completion

    @property
    def state(self) -> EngineState:
        return self.completion.state

    def extras(self) -> Extras:
        """The next-edit process's guard; its endpoint and served name only while it is ready."""
        second = self.next_edit
        ready = second.state is EngineState.READY and second.endpoint is not None
        return replace(self.completion.extras(), next_edit_pid=second.pid,
                       next_edit_endpoint=second.endpoint if ready else None,
                       next_edit_model=second.plan.served_name if ready else None)

    def describe(self) -> str | None:
        return (f"two vLLM processes: completion {self.completion.plan.describe()}; "
                f"next-edit {self.next_edit.plan.describe()}")

    async def _run(self) -> None:
        await self.completion.start()  # the next-edit process follows its "ready" (_completion_event)

    async def wait_ready(self, timeout_s: float) -> bool:
        return await self.completion.wait_ready(timeout_s)

    def _stop_order(self) -> list[list[Supervised]]:
        return [[self.next_edit, self.completion]]

    async def _yield_card(self) -> None:
        """The completion process is about to restart: what the handlers started settles, then the
        next-edit process stops (module doc); ``_completion_event`` starts it again. One given up
        is stopped already and never started again: nothing to yield (``_yielded`` would stay set)."""
        if self._stopping or self._gave_up:
            return
        self._yielded = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.next_edit.stop()

    # -- events ------------------------------------------------------------------------------------
    def _completion_event(self, event: EngineEvent) -> None:
        self._ready = event if event.state is EngineState.READY else None
        if not self._stopping and event.state is EngineState.READY and not self._gave_up:
            self._yielded = False
            self._spawn(self.next_edit.start())  # after completion's start, never beside it (module doc)
        elif not self._stopping and event.state in (EngineState.FAILED, EngineState.STOPPED):
            self._spawn(self.next_edit.stop())  # nothing to serve beside: its memory goes too
        if event.state is EngineState.READY and self._gave_up:  # ready again after a restart: still said
            event = replace(event, message=f"{event.message}; {self._stopped_note()}")
        self.on_event(event)

    def _next_edit_event(self, event: EngineEvent) -> None:
        if self._stopping or self._yielded:
            return
        if event.state is EngineState.RESTARTING and event.plan.model != self.model:
            self._gave_up = f"no step-down left for it ({event.message})"
            self._spawn(self.next_edit.stop())
            return
        if event.state is self._seen and event.state is not EngineState.READY:
            return  # its loading progress: the status shows the completion engine's
        self._seen = event.state
        if event.state in (EngineState.FAILED, EngineState.STOPPED):
            self._gave_up = self._gave_up or event.message
            log.warning("next-edit process: %s", self._gave_up)
        if self._ready is not None:  # the record and the binding learn the next-edit endpoint from this
            self.on_event(replace(self._ready, message=f"{self._ready.message}; {self._said(event)}"))

    def _said(self, event: EngineEvent) -> str:
        name = self.next_edit.plan.served_name
        if event.state is EngineState.READY:
            return f"next-edit: {name} ready at {event.endpoint}"
        if event.state in (EngineState.FAILED, EngineState.STOPPED):
            return self._stopped_note()
        return f"next-edit: {event.message[:200]}"

    def _stopped_note(self) -> str:
        return (f"next-edit: {self.next_edit.plan.served_name} stopped ({self._gave_up[:200]}); next edits use "
                f"{self.completion.plan.served_name} with the generic prompt")
