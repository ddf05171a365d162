"""What the editor's status bar shows: ``vllmCompanion/status`` plus throttled messages.

Two pieces. ``ServerStatus`` is the one owner of the status: it keeps its inputs (the engine's
state, the last backend outcome of completion *or* chat, the model and family served, whether
completions are on) and derives state and message from them, so no writer can wipe another's
message. ``StatusReporter`` is its channel: the notification (docs/protocol.md) is sent whenever
state, model or message change; ``window/showMessage`` is for the user and is throttled (the
same text at most once per ``THROTTLE_S``), so a dead engine does not spam the editor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import BackendError

log = logging.getLogger(__name__)

STATUS_METHOD = "vllmCompanion/status"
THROTTLE_S = 60.0
LATENCY_EVERY_S = 2.0


class State(StrEnum):
    STARTING = "starting"  # not contacted yet / engine loading
    READY = "ready"
    UNAVAILABLE = "unavailable"  # engine unreachable or failing: retried on the next request
    ERROR = "error"  # needs the user: bad settings, auth, missing model
    DISABLED = "disabled"


@dataclass
class Status:
    state: str = State.STARTING.value
    model: str | None = None
    message: str = ""
    family: str | None = None
    latency_ms: float | None = None
    loop_events: int = 0
    engine: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["latencyMs"] = out.pop("latency_ms")
        out["loopEvents"] = out.pop("loop_events")
        return {k: v for k, v in out.items() if v not in (None, {})}


class StatusReporter:
    """Sends status notifications and throttled user messages through the given callbacks."""

    def __init__(
        self,
        notify: Callable[[str, dict[str, Any]], None],
        show: Callable[[str, bool], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notify, self._show, self._clock = notify, show, clock
        self.current = Status()
        self._last_shown: dict[str, float] = {}
        self._latency_sent = float("-inf")

    def update(self, state: State | None = None, *, message: str | None = None, **fields: Any) -> None:
        before = self.current.to_json()
        if state is not None:
            self.current.state = state.value
        if message is not None:
            self.current.message = message
        for key, value in fields.items():
            setattr(self.current, key, value)
        after = self.current.to_json()
        significant = {k: v for k, v in after.items() if k != "latencyMs"}
        if significant != {k: v for k, v in before.items() if k != "latencyMs"}:
            self._safe(self._notify, STATUS_METHOD, after)

    def latency(self, ms: float) -> None:
        """Record the last completion latency; sent at most every ``LATENCY_EVERY_S`` on its own."""
        self.current.latency_ms = round(ms, 1)
        now = self._clock()
        if now - self._latency_sent >= LATENCY_EVERY_S:
            self._latency_sent = now
            self._safe(self._notify, STATUS_METHOD, self.current.to_json())

    def tell_user(self, text: str, error: bool = True) -> None:
        now = self._clock()
        last = self._last_shown.get(text)
        if last is not None and now - last < THROTTLE_S:
            return
        self._last_shown[text] = now
        self._safe(self._show, text, error)

    @staticmethod
    def _safe(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # the editor link may be gone; status must never break a request
            log.debug("status delivery failed", exc_info=True)


# The engine supervisor's states (engine/supervisor.py EngineState values) as status states.
ENGINE_STATES = {
    "stopped": State.UNAVAILABLE,
    "starting": State.STARTING,
    "ready": State.READY,
    "unhealthy": State.UNAVAILABLE,
    "restarting": State.STARTING,
    "failed": State.ERROR,
}


class ServerStatus:
    """The status's only writer: inputs in, derived state out (``StatusReporter`` sends it)."""

    def __init__(self, reporter: StatusReporter) -> None:
        self.reporter = reporter
        self.enabled = True
        self.engine_state: str | None = None  # None: no local engine (attached to an endpoint)
        self.engine_message = ""
        self.error: tuple[bool, str] | None = None  # (transient, message) of the last failure
        self.model: str | None = None
        self.family: str | None = None
        self.waiting = "contacting the engine"

    def engine(self, state: str, message: str) -> None:
        """The local engine changed state (supervisor events, or attaching)."""
        self.engine_state, self.engine_message = state, message
        if state == "ready":
            self.error = None
        self._publish()

    def serving(self, model: str, family: str) -> None:
        self.model, self.family = model, family
        self._publish()

    def succeeded(self) -> None:
        if self.error is not None:
            self.error = None
            self._publish()

    def failed(self, error: BackendError, why: str | None = None) -> None:
        """A backend failure that says something about the endpoint (``why``: a better text)."""
        self.error = (error.kind.transient, why or str(error))
        self._publish()

    def completions_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self._publish()

    def loops(self, total: int) -> None:
        self.reporter.update(loop_events=total)

    def latency(self, ms: float) -> None:
        self.reporter.latency(ms)

    def tell_user(self, text: str, error: bool = True) -> None:
        self.reporter.tell_user(text, error)

    def derive(self) -> tuple[State, str]:
        if not self.enabled:
            return State.DISABLED, "completions are disabled"
        if self.engine_state is not None and self.engine_state != "ready":
            return ENGINE_STATES.get(self.engine_state, State.UNAVAILABLE), self.engine_message
        if self.error is not None:
            return (State.UNAVAILABLE if self.error[0] else State.ERROR), self.error[1]
        if self.model is None:
            return State.STARTING, self.engine_message or self.waiting
        return State.READY, self.engine_message

    def _publish(self) -> None:
        state, message = self.derive()
        self.reporter.update(state, message=message, model=self.model, family=self.family,
                             engine=self.engine_state)
