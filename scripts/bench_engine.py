#!/usr/bin/env python3
"""Real engines on this machine: time to ready, TTFT, tokens/s, and the language server's cost.

For each engine (vLLM CPU build, llama.cpp) serving the CPU default model:
- ready: seconds from ``EngineManager.acquire`` to a ready engine (model already prepared);
- TTFT and tokens/s: streamed straight from the engine (128-token answers);
- ratio: inline-completion latency through the language server over stdio, divided by the same
  request sent straight to the engine (same prompt, same parameters, and read through the same
  stop stages, so both read exactly the same tokens).
  Target <= 1.05.

    python scripts/bench_engine.py [--kind vllm|llamacpp] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench_paths import prepare

prepare("bench-engine")

import httpx2 as httpx  # noqa: E402
from lsprotocol import types  # noqa: E402

from tests.lsp_session import inline_params, open_doc, session  # noqa: E402
from vllm_companion.completion.postprocess import stages_for  # noqa: E402
from vllm_companion.completion.window import build_window  # noqa: E402
from vllm_companion.config import EngineSettings  # noqa: E402
from vllm_companion.documents import Document  # noqa: E402
from vllm_companion.engine.manager import EngineManager  # noqa: E402
from vllm_companion.engine.registry import EngineRegistry  # noqa: E402
from vllm_companion.prompts import PLAIN, FimContext, render_fim  # noqa: E402
from vllm_companion.streaming import Pipeline  # noqa: E402
from vllm_companion.tokens import Budget  # noqa: E402

SOURCE = Path(json.__file__).parent / "decoder.py"  # real code that ships with Python
MAX_TOKENS = 32
AUTH: dict[str, str] = {}  # the engine's per-engine API key, once it is started


async def stream(
    endpoint: str, model: str, prompt: str, max_tokens: int, stages: Pipeline | None = None
) -> dict[str, float]:
    """Stream a completion; with ``stages``, stop where the language server's stages would."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "top_p": 0.95,
            "stream": True}
    t0 = time.perf_counter()
    first, chunks, text = None, 0, ""
    async with (httpx.AsyncClient(timeout=120, headers=AUTH) as http,
                http.stream("POST", f"{endpoint}/completions", json=body) as r):
        async for line in r.aiter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            piece = json.loads(line[5:])["choices"][0].get("text") or ""
            if piece and first is None:
                first = time.perf_counter() - t0
            chunks += 1
            text += piece
            if stages is not None and stages.feed(piece) is not None:
                break
    total = time.perf_counter() - t0
    return {"ttft": first or total, "total": total, "chunks": chunks}


async def bench(kind: str, requests: int) -> dict[str, float]:
    settings = EngineSettings(kind=kind, device="cpu")
    run_dir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    manager = EngineManager(settings, lambda e: None, lambda endpoint, model, key: None, EngineRegistry(run_dir))
    t0 = time.perf_counter()
    ok = await manager.acquire()
    ready_s = time.perf_counter() - t0
    if not ok or manager.endpoint is None or manager.model is None:
        raise SystemExit(f"{kind}: the engine did not start (log in {run_dir / 'logs'})")
    endpoint, model = manager.endpoint, manager.model
    AUTH["Authorization"] = f"Bearer {manager.api_key}"
    try:
        await stream(endpoint, model, "def warm_up():\n", 8)
        long_runs = [await stream(endpoint, model, "# A long explanation of Python decorators\n", 128)
                     for _ in range(3)]
        ttft = statistics.median(r["ttft"] for r in long_runs)
        tps = statistics.median((r["chunks"] - 1) / (r["total"] - r["ttft"]) for r in long_runs)
        ratio = await lsp_vs_direct(endpoint, model, requests)
    finally:
        await manager.release(stop=True)
    return {"ready_s": ready_s, "ttft_ms": ttft * 1000, "tokens_per_s": tps, **ratio}


async def lsp_vs_direct(endpoint: str, model: str, requests: int) -> dict[str, float]:
    source = SOURCE.read_text()
    doc = Document.from_text("file:///bench.py", "python", 1, source)
    rows = [r for r, line in enumerate(doc.lines) if line.strip() and len(line) < 90][20 : 20 + requests * 3 : 3]
    options = {"backend": {"endpoint": endpoint, "model": model, "apiKey": AUTH["Authorization"][7:]},
               "completion": {"debounceMs": 0, "cacheSize": 0, "maxTokens": MAX_TOKENS, "temperature": 0.0}}
    via_lsp, direct = [], []
    empty, retried = 0, 0
    async with session(options) as client:
        uri, _ = open_doc(client, source + "█")
        await client.text_document_inline_completion_async(inline_params(uri, types.Position(line=5, character=0)))
        for row in rows:
            col = len(doc.line(row))
            pos = types.Position(line=row, character=col)
            t0 = time.perf_counter()
            result = await client.text_document_inline_completion_async(inline_params(uri, pos))
            lsp_s = time.perf_counter() - t0
            empty += not (result and result.items)
            window = build_window(doc, row, col, Budget.for_model(2048, MAX_TOKENS, 2048))
            prompt = render_fim(PLAIN, FimContext(window.prefix, window.suffix))
            try:
                same = await stream(endpoint, model, prompt, MAX_TOKENS, stages_for(PLAIN, window, 16))
            except httpx.RemoteProtocolError:  # llama-cpp-python sometimes drops a stream: count, retry
                retried += 1
                same = await stream(endpoint, model, prompt, MAX_TOKENS, stages_for(PLAIN, window, 16))
            via_lsp.append(lsp_s)
            direct.append(same["total"])
    return {
        "lsp_p50_ms": statistics.median(via_lsp) * 1000,
        "direct_p50_ms": statistics.median(direct) * 1000,
        "ratio_p50": statistics.median(a / b for a, b in zip(via_lsp, direct, strict=True)),
        "samples": len(rows),
        "empty": empty,
        "retried": retried,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["vllm", "llamacpp"], action="append")
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    for kind in args.kind or ["vllm", "llamacpp"]:
        r = asyncio.run(bench(kind, args.requests))
        print(
            f"{kind:8s}: ready {r['ready_s']:.1f} s, TTFT {r['ttft_ms']:.0f} ms, {r['tokens_per_s']:.0f} tok/s; "
            f"inline completion p50 {r['lsp_p50_ms']:.0f} ms via LSP vs {r['direct_p50_ms']:.0f} ms direct, "
            f"ratio p50 {r['ratio_p50']:.3f} ({r['samples']:.0f} positions; {r['empty']:.0f} empty answers, "
            f"{r['retried']:.0f} direct streams dropped by the engine and retried)"
        )


if __name__ == "__main__":
    main()
