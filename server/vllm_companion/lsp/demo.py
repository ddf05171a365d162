"""``vllm-companion demo``: the README's first command, as an editor would see it.

It starts the language server over stdio with ``backend.launch`` on (so the server plans,
prepares and supervises the local engine: vLLM on the CPU when there is no GPU), waits for the
engine, then shows an inline completion and a streamed chat answer. It is an LSP client, so it
lives at the edge with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

from ..config import EngineSettings

DEMO_CODE = "import math\n\n\ndef circle_area(radius):\n    return "


class _Watch:
    """What the demo client hears from the server: readiness, failure, chat deltas."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.failed: list[str] = []
        self.deltas: list[str] = []

    def status(self, params: Any) -> None:
        state, message = getattr(params, "state", ""), getattr(params, "message", "")
        if message:
            print(f"  [{state}] {message}", file=sys.stderr, flush=True)
        if state == "ready" and getattr(params, "model", None):
            self.ready.set()
        if state == "error":
            self.failed.append(message)
            self.ready.set()

    def progress(self, params: Any) -> None:
        value = params.value
        delta = value.get("delta") if isinstance(value, dict) else getattr(value, "delta", None)
        if delta:
            self.deltas.append(delta)
            print(delta, end="", flush=True)


def _client(watch: _Watch) -> Any:
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("vllm-companion-demo", "1")

    # pygls marks the functions it registers: plain functions, not bound methods
    def status(params: Any) -> None:
        watch.status(params)

    def progress(params: Any) -> None:
        watch.progress(params)

    def create(params: Any) -> None:
        return None

    def show(params: Any) -> None:
        print(f"  (server) {params.message}", file=sys.stderr)

    for method, handler in (("vllmCompanion/status", status), (types.PROGRESS, progress),
                            (types.WINDOW_WORK_DONE_PROGRESS_CREATE, create), (types.WINDOW_SHOW_MESSAGE, show)):
        client.feature(method)(handler)
    return client


async def demo(settings: EngineSettings) -> int:
    """The main job on this machine: local engine, then a completion and a chat over real LSP."""
    from lsprotocol import types

    watch = _Watch()
    client = _client(watch)
    engine = {k: v for k, v in settings.model_dump(by_alias=True).items() if v is not None}
    options = {"backend": {"launch": True}, "engine": engine, "completion": {"debounceMs": 0}}
    print("vLLM Companion demo: starting the language server and its local engine "
          "(first run: model conversion ~30 s, vLLM start ~35 s on a CPU)", file=sys.stderr)
    await client.start_io(sys.executable, "-m", "vllm_companion", "--log-level", "warning", "lsp")
    caps = types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        text_document=types.TextDocumentClientCapabilities(inline_completion=types.InlineCompletionClientCapabilities()),
    )
    await client.initialize_async(types.InitializeParams(capabilities=caps, initialization_options=options))
    client.initialized(types.InitializedParams())
    code = 1
    try:
        await asyncio.wait_for(watch.ready.wait(), settings.ready_timeout_s + 60)
        if watch.failed:
            print(f"\nthe engine could not start: {watch.failed[-1]}", file=sys.stderr)
            return 1
        code = await _demo_round_trip(client, watch.deltas)
    except TimeoutError:
        print("\nthe engine did not become ready in time", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_async(None), 30)
            client.exit(None)
        await client.stop()
    return code


async def _demo_round_trip(client: Any, deltas: list[str]) -> int:
    from lsprotocol import types

    uri = "file:///demo/geometry.py"
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=DEMO_CODE + "\n")))
    lines = DEMO_CODE.split("\n")
    position = types.Position(line=len(lines) - 1, character=len(lines[-1]))
    t0 = time.perf_counter()
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    took = (time.perf_counter() - t0) * 1000
    items = result.items if result is not None else []
    suggestion = items[0].insert_text if items else None
    print("\n--- inline completion ---------------------------------------")
    print(DEMO_CODE.rstrip("\n") + (f"\033[2m{suggestion}\033[0m" if suggestion else "   (no suggestion)"))
    print(f"--- ({took:.0f} ms) ---\n\n--- chat ------------------------------------------------------")
    question = {"messages": [{"role": "user", "content": "What does a Python list comprehension do? One sentence."}],
                "partialResultToken": "demo-chat", "maxTokens": 80}
    t0 = time.perf_counter()
    answer = await client.protocol.send_request_async("vllmCompanion/chat", question)
    took = (time.perf_counter() - t0) * 1000
    content = getattr(answer, "content", "")
    if not deltas:
        print(content)
    print(f"\n--- ({took:.0f} ms, finish: {getattr(answer, 'finishReason', '?')}) ---")
    return 0 if suggestion is not None and content else 1
