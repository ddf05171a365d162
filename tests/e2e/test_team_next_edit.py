"""A team server whose plan serves a next-edit model beside the completion model: the front
(engine/front.py, engine/front_route.py) routes requests that name the next-edit model to that
process, after the same limits, lists both models, and answers its own 503 while that process is
down. Real front process, two fake engines on real sockets (A: completion, B: next-edit); and the
whole ``engine start --team`` over a paired GPU plan (fake NVML, fake engine executable). What a
member must NOT reach is attacked in tests/adversarial/test_team.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.adversarial.test_team import spawn, wait_listening
from tests.e2e.test_paired_engine import CARD, FAKE, SWEEP, arg, read_jsonl, record_of
from tests.fake_backend import FakeBackend, Seen, _send_json, dead_port
from tests.fake_nvml import install
from tests.lsp_session import inline, open_doc, session, wait_for

COMPLETION_MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"
COMPLETIONS, CHAT = "/v1/completions", "/v1/chat/completions"


@dataclass
class Team:
    main: FakeBackend  # A: the completion engine
    beside: FakeBackend  # B: the next-edit process
    port: int  # the front's
    key: str  # the members'

    async def post(self, path: str, body: dict[str, Any] | bytes) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as http:
            return await http.post(path, content=content, headers={"Authorization": f"Bearer {self.key}",
                                                                   "Content-Type": "application/json"})

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as http:
            return await http.get(path, headers={"Authorization": f"Bearer {self.key}"})


@contextlib.asynccontextmanager
async def team_front(log: Path, *extra: str, main: FakeBackend | None = None,
                     beside: FakeBackend | None = None) -> AsyncIterator[Team]:
    """The real front before A and B (both check the engine's internal key, as launch.py starts
    them); B's model is the front's ``--next-edit-model``."""
    key, internal = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    main = main or FakeBackend(model=COMPLETION_MODEL)
    beside = beside or FakeBackend(model=SWEEP)
    main.api_key = beside.api_key = internal
    await main.start()
    await beside.start()
    port = dead_port()
    env = {**os.environ, "VLLM_COMPANION_FRONT_KEY": key, "VLLM_COMPANION_FRONT_UPSTREAM_KEY": internal}
    with log.open("wb") as out:
        proc = spawn([sys.executable, "-m", "vllm_companion.engine.front", "--host", "127.0.0.1", "--port", str(port),
                      "--upstream", f"http://127.0.0.1:{main.port}", "--next-edit-upstream",
                      f"http://127.0.0.1:{beside.port}", "--next-edit-model", beside.model, *extra], env, stderr=out)
    try:
        await wait_listening(port)
        yield Team(main, beside, port, key)
    finally:
        proc.terminate()
        proc.wait(10)
        await main.stop()
        await beside.stop()


async def test_the_next_edit_model_is_routed_to_its_process_after_the_same_limits(tmp_path: Path) -> None:
    async with team_front(tmp_path / "front.log", "--max-tokens", "64") as team:
        asked = await team.post(COMPLETIONS, {"model": SWEEP, "prompt": "<|file_sep|>x", "max_tokens": 10**6,
                                              "priority": -9, "n_predict": 10**6, "stop": ["<|endoftext|>"]})
        assert asked.status_code == 200 and asked.json()["choices"][0]["text"] == "pass"
        (seen,) = team.beside.requests
        assert seen.body["model"] == SWEEP and seen.body["max_tokens"] == 64 and seen.body["priority"] == 0
        assert "n_predict" not in seen.body  # an unknown field is dropped there too
        assert (await team.post(COMPLETIONS, {"model": SWEEP, "prompt": "x", "n": 4})).status_code == 400
        chat = await team.post(CHAT, {"model": SWEEP, "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 200 and len(team.beside.requests) == 2
        for body in ({"model": COMPLETION_MODEL, "prompt": "x"}, {"prompt": "x"}, {"model": "other", "prompt": "x"}):
            assert (await team.post(COMPLETIONS, body)).status_code == 200
        assert [r.body.get("model") for r in team.main.requests] == [COMPLETION_MODEL, None, "other"]
        assert len(team.beside.requests) == 2


async def test_the_models_listing_has_both_the_completion_model_first(tmp_path: Path) -> None:
    async with team_front(tmp_path / "front.log") as team:
        listed = await team.get("/v1/models")
        assert listed.status_code == 200
        assert [m["id"] for m in listed.json()["data"]] == [COMPLETION_MODEL, SWEEP]
        assert listed.json()["data"][1]["max_model_len"] == 4096  # B's own card, as B listed it
        assert (await team.get("/health")).status_code == 200
        assert team.main.models_asked == 1 and team.beside.models_asked == 1


async def test_with_the_next_edit_process_down_its_model_gets_503_and_the_rest_goes_on(tmp_path: Path) -> None:
    async with team_front(tmp_path / "front.log") as team:
        await team.beside.stop()
        down = await team.post(COMPLETIONS, {"model": SWEEP, "prompt": "x"})
        assert down.status_code == 503 and SWEEP in down.json()["error"]["message"]
        assert down.headers["retry-after"]
        assert team.main.requests == []  # never answered by the completion engine instead
        assert (await team.post(COMPLETIONS, {"model": COMPLETION_MODEL, "prompt": "x"})).status_code == 200
        listed = await team.get("/v1/models")  # what members see: no next-edit model to ask
        assert listed.status_code == 200 and [m["id"] for m in listed.json()["data"]] == [COMPLETION_MODEL]
        await team.beside.start(team.beside.port)  # it comes back on the same port (engine/launch.py)
        assert (await team.post(COMPLETIONS, {"model": SWEEP, "prompt": "x"})).status_code == 200


def team_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """tests/e2e/test_team.py's ``cli`` on a machine whose NVML shows an RTX 3060 (the plan puts
    Sweep next-edit beside the completion model: tests/e2e/test_paired_engine.py); each fake engine
    answers ``answer_from_<its port>``."""
    env = {**os.environ, "VLLM_COMPANION_CACHE": str(tmp_path / "cache"),
           "VLLM_COMPANION_ENGINE_COMMAND": json.dumps(FAKE),
           "FAKE_ENGINE_ARGS": str(tmp_path / "starts.jsonl"), "FAKE_ENGINE_SAY_PORT": "1",
           "PYTHONPATH": os.pathsep.join([str(install(tmp_path / "nvml", [CARD])), os.environ.get("PYTHONPATH", "")])}
    env.pop("VLLM_COMPANION_ENGINE_KEY", None)
    return subprocess.run([sys.executable, "-m", "vllm_companion", *args], env=env, capture_output=True, text=True,
                          timeout=120)


async def test_engine_start_team_over_a_paired_plan_serves_both_models_through_the_front(tmp_path: Path) -> None:
    """The launch side: ``engine start --team`` over a GPU plan with a next-edit model gives the
    front both upstreams, and ``engine status`` shows the front's URL and the next-edit model; the
    next-edit process killed comes back on the same port, where the front still finds it."""
    port = dead_port()
    started = team_cli(tmp_path, "engine", "start", "--team", "--host", "127.0.0.1", "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        key = started.stderr.split("shown once", 1)[1].splitlines()[1].strip()
        run = tmp_path / "cache" / "run"
        await wait_for(lambda: record_of(run).get("nextEditEndpoint"), timeout=30)  # after completion's "ready"
        first, second = read_jsonl(tmp_path / "starts.jsonl")[:2]  # completion, then next-edit
        assert arg(second, "--served-model-name") == SWEEP
        status = json.loads(team_cli(tmp_path, "engine", "status").stdout)
        assert status["frontUrl"] == f"http://127.0.0.1:{port}/v1" and status["nextEditModel"] == SWEEP
        assert status["nextEditEndpoint"] == f"http://127.0.0.1:{arg(second, '--port')}/v1"
        team = Team(FakeBackend(), FakeBackend(), port, key)
        listed = await team.get("/v1/models")
        assert [m["id"] for m in listed.json()["data"]] == [arg(first, "--served-model-name"), SWEEP]
        for model, process in ((SWEEP, second), (arg(first, "--served-model-name"), first)):
            answer = await team.post(COMPLETIONS, {"model": model, "prompt": "x", "max_tokens": 4})
            assert answer.json()["choices"][0]["text"] == f"answer_from_{arg(process, '--port')}"
        os.killpg(status["nextEdit"]["pid"], signal.SIGKILL)
        await wait_for(lambda: len(read_jsonl(tmp_path / "starts.jsonl")) == 3, timeout=30)
        assert arg(read_jsonl(tmp_path / "starts.jsonl")[2], "--port") == arg(second, "--port")
        await wait_for(lambda: record_of(run).get("nextEditEndpoint"), timeout=30)
        answer = await team.post(COMPLETIONS, {"model": SWEEP, "prompt": "x", "max_tokens": 4})
        assert answer.json()["choices"][0]["text"] == f"answer_from_{arg(second, '--port')}"
    finally:
        team_cli(tmp_path, "engine", "stop")


# -- the editor's side: attached to such a front (backend.launch off) ----------------------------
INLINE_EDIT = "textDocument/copilotInlineEdit"


class Listing(FakeBackend):
    """An endpoint that lists these models, in this order (a gateway may put the next-edit one first)."""

    def __init__(self, models: list[str]) -> None:
        super().__init__(model=models[0])
        self.models = models

    async def _route(self, method: str, path: str, body: dict[str, Any], reader: Any, writer: Any) -> bool:
        if path != "/v1/models":
            return await super()._route(method, path, body, reader, writer)
        self.models_asked += 1
        return await _send_json(writer, 200, {"object": "list", "data": [{"id": m, "max_model_len": 4096}
                                                                         for m in self.models]})


async def next_edit_asked(client: Any, uri: str) -> None:
    """A next-edit request that edit propagation cannot answer: the model is asked."""
    params = {"textDocument": {"uri": uri, "version": 1}, "position": {"line": 1, "character": 4}}
    await asyncio.wait_for(client.protocol.send_request_async(INLINE_EDIT, params), 20)


def sweep_prompts(engine: FakeBackend) -> list[Seen]:
    return [r for r in engine.generation_requests() if "<|file_sep|>current/" in str(r.body.get("prompt", ""))]


async def test_an_editor_on_the_front_completes_with_the_completion_model_and_asks_next_edits_of_sweep(
        tmp_path: Path) -> None:
    """...and when the next-edit process goes, the next health check's listing lacks it: next
    edits go to the completion model with the generic prompt (chat messages)."""
    async with team_front(tmp_path / "front.log") as team:
        init = {"backend": {"endpoint": f"http://127.0.0.1:{team.port}/v1", "apiKey": team.key,
                            "healthIntervalS": 0.3}, "completion": {"debounceMs": 0}, "nextEdit": {"timeoutMs": 10000}}
        async with session(init) as client:
            uri, pos = open_doc(client, "def f(count):\n    █\n", name="f.py")
            assert await inline(client, uri, pos) == "pass"
            assert {r.body["model"] for r in team.main.generation_requests()} == {COMPLETION_MODEL}
            await next_edit_asked(client, uri)
            (asked,) = team.beside.generation_requests()
            assert asked.body["model"] == SWEEP and sweep_prompts(team.beside) == [asked]  # Sweep's own format
            assert all(r.body["model"] == COMPLETION_MODEL for r in team.main.generation_requests())
            await team.beside.stop()
            asked_before = team.main.models_asked
            await wait_for(lambda: team.main.models_asked >= asked_before + 2, timeout=10)  # listed again
            await next_edit_asked(client, uri)
        generic = [r for r in team.main.generation_requests() if r.path == CHAT]
        assert [r.body["model"] for r in generic] == [COMPLETION_MODEL] and not sweep_prompts(team.main)


@pytest.mark.parametrize(("setting", "completes_with"), [(None, COMPLETION_MODEL), ("other/model", "other/model")])
async def test_the_next_edit_model_listed_first_is_never_the_completion_model(
        setting: str | None, completes_with: str) -> None:
    endpoint = await Listing([SWEEP, COMPLETION_MODEL, "other/model"]).start()
    try:
        backend = {"endpoint": endpoint.url, **({"model": setting} if setting else {})}
        init = {"backend": backend, "completion": {"debounceMs": 0}, "nextEdit": {"timeoutMs": 10000}}
        async with session(init) as client:
            uri, pos = open_doc(client, "def f(count):\n    █\n", name="f.py")
            assert await inline(client, uri, pos) == "pass"
            await next_edit_asked(client, uri)
        completions = [r for r in endpoint.generation_requests() if r not in sweep_prompts(endpoint)]
        assert {r.body["model"] for r in completions} == {completes_with}
        assert [r.body["model"] for r in sweep_prompts(endpoint)] == [SWEEP]  # next edits: the same endpoint
    finally:
        await endpoint.stop()
