"""The endpoint's circuit breaker (backend/availability.py) with an injected clock."""

from __future__ import annotations

from vllm_companion.backend import BackendError, ErrorKind
from vllm_companion.backend.availability import Availability


def test_a_hung_endpoint_stays_left_alone_while_its_recovery_probe_runs() -> None:
    """The back-off ends, the recovery probe starts and hangs: a request arriving then would wait
    its whole cap on the same hang (tests/e2e/test_hostile.py saw 0.96 s against a 0.2 s bound)."""
    now = [100.0]
    availability = Availability(clock=lambda: now[0])
    assert availability.failed(BackendError(ErrorKind.TIMEOUT, "no answer"), probe=True)
    assert availability.blocked()
    now[0] += 1.5  # past the first 1 s back-off
    assert availability.blocked() is None
    with availability.checking():
        assert availability.blocked()
    assert availability.blocked() is None
    availability.succeeded()
    with availability.checking():  # a probe of an endpoint nobody found down blocks nothing new
        assert availability.blocked() is None
