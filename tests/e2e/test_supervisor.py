"""Supervisor faults against a fake engine executable (tests/fake_engine.py) at the process
boundary: states, restarts, back-off, step-downs, messages, and nothing left running."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.fake_engine_command import fake_command, gone
from vllm_companion.engine.planning.hardware import Gpu
from vllm_companion.engine.planning.plan import plan_launch
from vllm_companion.engine.supervised import EngineEvent, EngineState, Policy
from vllm_companion.engine.supervisor import ProcessSupervisor

FAST = Policy(stall_timeout_s=1.5, poll_s=0.05, health_interval_s=0.2, health_failures=2,
              backoff_s=(0.05, 0.1, 0.2, 0.4), crash_loop=(5, 60.0), stop_grace_s=3)
GPU_PLAN = plan_launch([Gpu(0, "NVIDIA GeForce RTX 4060 Laptop GPU", 8192, 7900, (8, 9))])


class Harness:
    def __init__(self, tmp: Path, modes: list[str], plan=GPU_PLAN, policy: Policy = FAST,  # type: ignore[no-untyped-def]
                 extra: dict[str, str] | None = None) -> None:
        self.script, self.args = tmp / "script.json", tmp / "args.jsonl"
        self.script.write_text(json.dumps(modes))
        self.events: list[EngineEvent] = []
        env = {"FAKE_ENGINE_SCRIPT": str(self.script), "FAKE_ENGINE_ARGS": str(self.args), **(extra or {})}
        self.sup = ProcessSupervisor(plan, fake_command(env), tmp / "logs", self.events.append, policy, [])

    def states(self) -> list[str]:
        return [e.state.value for e in self.events]

    def starts(self) -> list[list[str]]:
        return [json.loads(x) for x in self.args.read_text().splitlines()] if self.args.exists() else []

    def messages(self) -> str:
        return "\n".join(e.message for e in self.events)


@pytest.fixture
async def harnesses() -> AsyncIterator[list[Harness]]:
    """Every harness made in a test is stopped at teardown, pass or fail: nothing left running."""
    made: list[Harness] = []
    yield made
    for h in made:
        await h.sup.stop()
        assert gone(h.sup.pid)


def arg(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


async def test_slow_start_reports_progress_then_ready_and_stop_leaves_nothing(
    tmp_path: Path, harnesses: list[Harness]
) -> None:
    h = Harness(tmp_path, ["slow"])
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    percents = [e.percent for e in h.events if e.percent is not None]
    assert percents and percents[-1] == 100 and percents == sorted(percents)
    assert h.sup.endpoint and h.events[-1].state is EngineState.READY
    argv = h.starts()[0]
    assert arg(argv, "--host") == "127.0.0.1" and arg(argv, "--gpu-memory-utilization") == "0.90"
    assert "--enable-prefix-caching" in argv
    pid = h.sup.pid
    await h.sup.stop()
    assert gone(pid) and h.sup.state is EngineState.STOPPED


async def test_crash_on_start_backs_off_then_stops_as_a_crash_loop(tmp_path: Path, harnesses: list[Harness]) -> None:
    h = Harness(tmp_path, ["crash_start"])
    harnesses.append(h)
    await h.sup.start()
    assert not await h.sup.wait_ready(30)
    assert h.sup.state is EngineState.FAILED
    assert h.states().count("restarting") == 4 and len(h.starts()) == 5
    assert "crash loop" in h.events[-1].message and "Engine core initialization failed" in h.events[-1].message
    assert "restarting in" in h.messages()
    assert gone(h.sup.pid)


async def test_crash_after_ready_restarts_and_is_ready_again(tmp_path: Path, harnesses: list[Harness]) -> None:
    h = Harness(tmp_path, ["crash_after_ready", "ok"])
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    first = h.sup.endpoint
    while h.states().count("ready") < 2:
        assert h.sup.state is not EngineState.FAILED
        await h.sup.wait_ready(20)
        import asyncio

        await asyncio.sleep(0.1)
    assert "restarting" in h.states() and h.sup.restarts == 1
    assert "EngineCore died" in h.sup.last_error or "exited" in h.sup.last_error
    assert h.sup.endpoint != first or len(h.starts()) == 2
    await h.sup.stop()


@pytest.mark.parametrize(
    ("mode", "flag", "before", "after"),
    [
        ("oom", "--max-model-len", "4096", "2048"),
        ("kv", "--gpu-memory-utilization", "0.50", "0.90"),
        ("kv_small", "--max-model-len", "4096", "1280"),
    ],
)
async def test_memory_failures_step_down(
    tmp_path: Path, harnesses: list[Harness], mode: str, flag: str, before: str, after: str
) -> None:
    h = Harness(tmp_path, [mode, "ok"], replace(GPU_PLAN, gpu_memory_utilization=0.5))
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    first, second = h.starts()
    assert (arg(first, flag), arg(second, flag)) == (before, after)
    assert "restarting" in h.states()
    await h.sup.stop()


async def test_port_taken_restarts_on_another_port(tmp_path: Path, harnesses: list[Harness]) -> None:
    h = Harness(tmp_path, ["port_taken", "ok"])
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    first, second = h.starts()
    assert arg(first, "--port") != arg(second, "--port")
    assert "port was taken" in h.messages()
    await h.sup.stop()


async def test_hang_without_readiness_is_stopped_by_the_stall_timer(tmp_path: Path, harnesses: list[Harness]) -> None:
    h = Harness(tmp_path, ["hang", "ok"])
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    assert "no progress" in h.messages() and len(h.starts()) == 2
    await h.sup.stop()


async def test_gated_model_fails_at_once_with_advice(tmp_path: Path, harnesses: list[Harness]) -> None:
    h = Harness(tmp_path, ["gated"])
    harnesses.append(h)
    await h.sup.start()
    assert not await h.sup.wait_ready(20)
    assert len(h.starts()) == 1 and h.sup.state is EngineState.FAILED
    assert "huggingface-cli login" in h.events[-1].message


async def test_engine_without_health_endpoint_and_noisy_access_log(tmp_path: Path, harnesses: list[Harness]) -> None:
    """llama-cpp-python: /health is 404 and every probe logs a line; ready via /v1/models, and the
    probes' own log lines must not keep a stalled start alive."""
    h = Harness(tmp_path, ["no_health"])
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(10)
    assert h.sup.state is EngineState.READY


LAPTOP_09 = [Gpu(0, "NVIDIA GeForce RTX 4060 Laptop GPU", 8188, 8188 - 900, (8, 9))]


async def test_free_memory_check_lowers_utilization_and_the_next_start_succeeds(
    tmp_path: Path, harnesses: list[Harness]
) -> None:
    """vLLM's start-up check finds 6.92 of 8 GiB free (another program grew): the utilization
    comes down to what is free, the arithmetic keeps the model or picks a smaller one, and the
    next start is ready; the step is reported with its reason."""
    plan = replace(plan_launch(LAPTOP_09), gpu_memory_utilization=0.9, enforce_eager=False)
    h = Harness(tmp_path, ["free_memory", "ok"], plan)
    h.sup.gpus = LAPTOP_09
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    first, second = h.starts()
    assert arg(first, "--gpu-memory-utilization") == "0.90"
    assert float(arg(second, "--gpu-memory-utilization")) <= (6.92 - 0.25) / 8.0
    assert "were free" in h.messages() and "gpu-memory-utilization 0.90 ->" in h.messages()
    await h.sup.stop()


async def test_graph_capture_failure_goes_eager(tmp_path: Path, harnesses: list[Harness]) -> None:
    plan = replace(GPU_PLAN, enforce_eager=False)
    h = Harness(tmp_path, ["graph_capture", "ok"], plan)
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    first, second = h.starts()
    assert "--enforce-eager" not in first and "--enforce-eager" in second
    assert "CUDA graphs" in h.messages()
    await h.sup.stop()


# -- health checks left unanswered: at work or stuck (engine/busy.py) ---------------------------


def checks(h: Harness) -> list[bool]:
    """Every health check's result, in order (the real check, recorded)."""
    seen: list[bool] = []
    real = h.sup._healthy

    async def spy(http: httpx.AsyncClient) -> bool:
        ok = await real(http)
        seen.append(ok)
        return ok

    h.sup._healthy = spy  # type: ignore[method-assign]
    return seen


async def long_prompt(h: Harness) -> httpx.Response:
    """A completion request: the busy and frozen fakes answer nothing else while they serve it."""
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(f"{h.sup.endpoint}/completions", json={"model": GPU_PLAN.served_name, "prompt": "x"})


async def stalled_until_restarted(h: Harness) -> tuple[asyncio.Task[httpx.Response], float]:
    """Start ``h``, stall it with a long prompt, and wait until it is ready again (restarted): the
    prompt's task, and the seconds from the prompt to the second ready."""
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    pending = asyncio.create_task(long_prompt(h))
    began = time.monotonic()
    while h.states().count("ready") < 2:
        assert h.sup.state is not EngineState.FAILED and time.monotonic() - began < 30
        await asyncio.sleep(0.1)
    return pending, time.monotonic() - began


async def test_an_engine_at_work_on_a_long_prompt_is_not_restarted(tmp_path: Path, harnesses: list[Harness]) -> None:
    """llama.cpp reading a long prompt answers no health check (issue 20's warm-up had it killed
    mid-request). The fake burns CPU on a thread for 8 s, answering nothing: more failed checks in
    a row than FAST's two that restart an idle engine; it is at work, so it keeps running and the
    request gets its answer."""
    h = Harness(tmp_path, ["busy", "ok"], extra={"FAKE_ENGINE_SILENT_S": "8"})
    harnesses.append(h)
    await h.sup.start()
    assert await h.sup.wait_ready(20)
    seen = checks(h)
    answer = await long_prompt(h)
    assert answer.status_code == 200 and "ready_engine_answer" in answer.text
    assert seen.count(False) >= FAST.health_failures  # the old rule would have restarted it
    assert h.sup.restarts == 0 and len(h.starts()) == 1 and "unhealthy" not in h.states()
    assert h.sup.state is EngineState.READY


async def test_an_engine_that_neither_answers_nor_works_is_restarted(tmp_path: Path, harnesses: list[Harness]) -> None:
    """A deadlock: no answer and no CPU. Restarted after FAST's two idle checks, as before."""
    h = Harness(tmp_path, ["frozen", "ok"], extra={"FAKE_ENGINE_SILENT_S": "3600"})
    harnesses.append(h)
    pending, _ = await stalled_until_restarted(h)
    assert "unhealthy" in h.states() and "stopped answering /health" in h.messages()
    assert h.sup.restarts == 1 and len(h.starts()) == 2
    with pytest.raises(httpx.HTTPError):
        await pending  # the frozen engine was ended under it


async def test_an_engine_at_work_but_silent_past_the_limit_is_restarted(
    tmp_path: Path, harnesses: list[Harness]
) -> None:
    """A spinning deadlock (CUDA and NCCL waits spin a core) looks at work: past ``busy_limit_s``
    without an answer it is a stall all the same."""
    policy = replace(FAST, busy_limit_s=4.0)
    h = Harness(tmp_path, ["busy", "ok"], policy=policy, extra={"FAKE_ENGINE_SILENT_S": "60"})
    harnesses.append(h)
    pending, took = await stalled_until_restarted(h)
    assert took >= policy.busy_limit_s
    assert "no answer to /health for 4 s, though at work" in h.messages()
    assert "stopped answering" not in h.messages() and h.sup.restarts == 1
    with pytest.raises(httpx.HTTPError):
        await pending
