"""Status notifications, throttled messages, and the error classifier."""

from __future__ import annotations

import asyncio

import openai

from vllm_companion.backend.errors import ErrorKind, classify
from vllm_companion.status import State, StatusReporter


def test_status_sent_on_change_only_and_messages_throttled() -> None:
    sent: list[dict[str, object]] = []
    shown: list[str] = []
    now = [0.0]
    rep = StatusReporter(lambda m, p: sent.append(p), lambda t, e: shown.append(t), clock=lambda: now[0])
    rep.update(State.READY, model="m")
    rep.update(State.READY, model="m")
    rep.latency(12.0)  # sent: the status bar shows the last latency
    rep.latency(13.0)  # not sent: within 2 s of the last
    rep.update(State.UNAVAILABLE, message="down")
    assert [s["state"] for s in sent] == ["ready", "ready", "unavailable"]
    assert sent[1]["latencyMs"] == 12.0
    for _ in range(5):
        rep.tell_user("engine down")
    now[0] = 61.0
    rep.tell_user("engine down")
    assert shown == ["engine down", "engine down"]


def test_status_delivery_failure_is_swallowed() -> None:
    def boom(*_: object) -> None:
        raise BrokenPipeError

    StatusReporter(boom, boom).update(State.ERROR, message="x")


def _status_error(code: int, message: str) -> openai.APIStatusError:
    import httpx2

    req = httpx2.Request("POST", "http://x/v1/completions")
    return openai.APIStatusError(message, response=httpx2.Response(code, request=req), body=None)


def test_classify() -> None:
    assert classify(asyncio.CancelledError()).kind is ErrorKind.CANCELLED
    assert classify(TimeoutError()).kind is ErrorKind.TIMEOUT
    assert classify(ConnectionRefusedError()).kind is ErrorKind.UNAVAILABLE
    msg = "This model's maximum context length is 2048 tokens"
    assert classify(_status_error(400, msg)).kind is ErrorKind.CONTEXT_LENGTH
    assert classify(_status_error(400, "chat template not found")).kind is ErrorKind.TEMPLATE
    assert classify(_status_error(429, "busy")).kind is ErrorKind.OVERLOADED
    assert classify(_status_error(401, "no")).kind is ErrorKind.AUTH
    assert classify(_status_error(500, "boom")).kind is ErrorKind.SERVER
    assert classify(ValueError("x")).kind is ErrorKind.INTERNAL
    assert ErrorKind.UNAVAILABLE.transient and not ErrorKind.AUTH.transient
