#!/usr/bin/env python3
"""Inline-completion latency with and without a long chat answer streaming at the same time.

Starts the local engine (vLLM CPU build unless --kind llamacpp), opens one language server on it,
then times N invoked inline completions alone, and N more while a chat answer of 512 tokens
streams through the same server, in two passes over two unrelated files with the order swapped,
on interleaved rows (so prompt lengths and prefix-cache warmth favour neither). Prints p50/p90.

    python scripts/bench_chat_priority.py [--kind vllm] [--requests 12]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench_paths import prepare

prepare("bench-chat-priority")

from lsprotocol import types  # noqa: E402

from tests.lsp_session import capture_partials, inline_params, open_doc, session  # noqa: E402
from vllm_companion.config import EngineSettings  # noqa: E402
from vllm_companion.engine.manager import EngineManager  # noqa: E402
from vllm_companion.engine.registry import EngineRegistry  # noqa: E402


def code(tag: str) -> str:
    """A file of small handlers; ``tag`` makes each pass's file share no prefix with the other's."""
    return f"# {tag}\n" + "".join(
        f"def handler_{i}(request):\n    value = request.get('v{i}')\n    return \n\n" for i in range(40))


async def timed_completions(client: object, uri: str, rows: list[int]) -> list[float]:
    out = []
    for row in rows:
        t0 = time.perf_counter()
        await client.text_document_inline_completion_async(  # type: ignore[attr-defined]
            inline_params(uri, types.Position(line=row + 1, character=11))
        )
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def run(kind: str, requests: int, args_no_priority: bool = False, max_num_seqs: int | None = None) -> None:
    settings = EngineSettings(kind=kind, device="cpu", max_num_seqs=max_num_seqs)
    manager = EngineManager(settings, lambda e: None, lambda a, b, c: None,
                            EngineRegistry(Path(tempfile.mkdtemp(prefix="bench-prio-"))))
    if not await manager.acquire():
        raise SystemExit("engine failed")
    backend = {"endpoint": manager.endpoint, "model": manager.model, "apiKey": manager.api_key,
               "priority": not args_no_priority}
    options = {"backend": backend,
               "completion": {"debounceMs": 0, "cacheSize": 0, "maxTokens": 24, "temperature": 0.0},
               "chat": {"maxTokens": 512, "temperature": 0.7}}
    alone: list[float] = []
    during: list[float] = []
    still_streaming = True
    try:
        async with session(options) as client:
            capture_partials(client)
            # Two passes on two unrelated files, on interleaved rows (the same spread of prompt
            # lengths), the order swapped in the second, so prefix-cache warmth favours neither.
            rows = [2 + 4 * i for i in range(requests)]
            for tag, chat_first in (("first pass", False), ("second pass", True)):
                uri, _ = open_doc(client, code(tag) + "█")
                await timed_completions(client, uri, rows[:1])  # warm-up
                for with_chat in (chat_first, not chat_first):
                    part = rows[0::2] if with_chat == chat_first else rows[1::2]
                    if not with_chat:
                        alone += await timed_completions(client, uri, part)
                        continue
                    got, streaming = await during_chat(client, uri, part)
                    during += got
                    still_streaming = still_streaming and streaming
    finally:
        await manager.release(stop=True)
    for name, values in (("alone", alone), ("during chat", during)):
        values.sort()
        print(f"{kind}: inline completion {name:12s} p50 {statistics.median(values):6.0f} ms, "
              f"p90 {values[int(len(values) * 0.9) - 1]:6.0f} ms ({len(values)} requests)")
    print(f"{kind}: chat still streaming throughout: {still_streaming}")


async def during_chat(client: object, uri: str, rows: list[int]) -> tuple[list[float], bool]:
    """Completions timed while a long chat answer streams through the same server."""
    question = {"messages": [{"role": "user", "content": "Explain Python's asyncio in depth, with examples."}],
                "partialResultToken": f"bench-{uri}", "maxTokens": 512}
    protocol = client.protocol  # type: ignore[attr-defined]
    chat = asyncio.ensure_future(protocol.send_request_async("vllmCompanion/chat", question))
    await asyncio.sleep(1.0)  # the answer is streaming
    out = await timed_completions(client, uri, rows)
    streaming = not chat.done()
    await chat
    return out, streaming


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["vllm", "llamacpp"], default="vllm")
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--no-priority", action="store_true", help="send no request priorities (FCFS)")
    parser.add_argument("--max-num-seqs", type=int, help="the engine's --max-num-seqs (1: a completion preempts chat)")
    args = parser.parse_args()
    asyncio.run(run(args.kind, args.requests, args.no_priority, args.max_num_seqs))


if __name__ == "__main__":
    main()
