"""Backend health for editors: ``vllmCompanion/status`` notifications plus throttled messages.

The notification (documented in docs/protocol.md) is sent whenever state, model or message
change, so a status bar can follow it. ``window/showMessage`` is for the user and is throttled:
the same text at most once per ``THROTTLE_S``, so a dead engine does not spam the editor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

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
    extra: dict[str, Any] = field(default_factory=dict)

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
