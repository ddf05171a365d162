"""Whether the endpoint is worth asking now: a small circuit breaker with Retry-After.

Inline completion must answer within its cap (completion.timeoutMs) whatever the engine does.
While the endpoint is known to be down or hung, or has asked us to back off (429/503 with
``Retry-After``), requests answer at once with nothing instead of waiting on it again, and one
background probe (health.py) watches for the recovery. "Known" means a probe of the
endpoint itself (``/v1/models``, ``/tokenize``) timed out: a generation that fails only triggers
such a probe, since one slow or dropped answer says little about the next; a refused connection
is simply tried again (it costs under a millisecond and notices a restarted engine at once). Back-off:
1, 2, 4, 8, 15 s; ``Retry-After`` as sent (capped at ``MAX_RETRY_AFTER_S``). Request-local
failures (a prompt the engine refused, our own bug, and a router's or gateway's answer that the
worker behind it failed: ``UPSTREAM``, errors.py) never open it nor trigger a probe: behind a
fleet's router one dead replica is not the endpoint (issue 19, point 10). Measured in tests/e2e/test_hostile.py: a hung
endpoint costs one capped request, then answers in under 50 ms.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from .errors import BackendError, ErrorKind

MAX_RETRY_AFTER_S = 120.0
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0)
# Kinds that say the endpoint itself is in trouble. A refused connection is not among those that
# open the breaker (PROBE_OPENS): it fails in under a millisecond, so trying again costs nothing
# and notices a restarted engine at once; a hang costs a whole cap each time.
ENDPOINT_KINDS = {ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT, ErrorKind.OVERLOADED}
PROBE_OPENS = {ErrorKind.TIMEOUT}


class Availability:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.until = 0.0
        self.reason = ""
        self._failures = 0
        self._checking = False

    def blocked(self) -> str | None:
        """Why not to ask the endpoint now, or None."""
        return self.reason if (self._checking and self.reason) or self._clock() < self.until else None

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """A recovery probe is under way: the endpoint stays left alone until it answers (a
        request now would only wait its whole cap on the same hang)."""
        self._checking = True
        try:
            yield
        finally:
            self._checking = False

    def remaining_s(self) -> float:
        return max(0.0, self.until - self._clock())

    def failed(self, exc: BackendError, probe: bool = False) -> bool:
        """Record a failure (``probe``: of the endpoint itself); True if the endpoint is now left
        alone for a while."""
        if exc.kind is ErrorKind.OVERLOADED and exc.retry_after_s is not None:
            wait = min(MAX_RETRY_AFTER_S, exc.retry_after_s)
            self.reason = f"the engine asked to wait {wait:.0f} s ({exc.message[:80]})"
        elif probe and exc.kind in PROBE_OPENS:
            wait = BACKOFF_S[min(self._failures, len(BACKOFF_S) - 1)]
            self.reason = f"{exc}; retrying in {wait:.0f} s"
        else:
            return False
        self._failures += 1
        self.until = max(self.until, self._clock() + wait)
        return True

    def succeeded(self) -> None:
        self.until, self.reason, self._failures = 0.0, "", 0
