#!/usr/bin/env python3
"""Prompt-prefix stability while typing, with context beyond the file on and off.

vLLM's automatic prefix caching skips the prefill of whatever a prompt shares with an earlier
one, so what matters while typing is how much of each prompt's head is the previous prompt's.
A real project is the workspace: the standard library's ``json`` package (read-only: nothing is
written there). ``encoder.py`` and ``scanner.py`` are open beside ``decoder.py``, which is opened
with ``--keys`` characters from ``def py_scanstring`` on taken out, typed back key by key, each
key a didChange and an invoked inline completion through the real language server over stdio.

Phase 1 (always): the engine is the fake OpenAI-compatible server (tests/fake_backend.py), which
records every prompt: reported are the share of each prompt that is a prefix of the previous one
(mean, 10th percentile; goal 90 %), the same for the part of the prompt before the cursor (a
prefix-suffix-middle family puts the code after the cursor last, so that part is prefilled again
on every key whatever we do), and the context's share of the prompt, per family (plain:
commented snippets, switched on here with ``commentedContext``; qwen2.5-coder: its repo/file
tokens), and each request's round trip (the fake engine answers at once: this is the server's
own cost, context gathering included). Phase 2 (``--engine``): the same
typing against the CPU vLLM, and its prefix-cache hit rate from ``/metrics``.

    python scripts/bench_prefix.py [--keys 200] [--engine]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_paths import prepare

prepare("bench-prefix")

from bench_concurrency import engine_metrics  # noqa: E402
from lsprotocol import types  # noqa: E402

from tests.fake_backend import FakeBackend, Reply  # noqa: E402
from tests.lsp_session import inline, session, type_text  # noqa: E402

PACKAGE = Path(sysconfig.get_paths()["stdlib"]) / "json"
MODELS = {"plain": "HuggingFaceTB/SmolLM2-135M-Instruct", "qwen2.5-coder": "Qwen/Qwen2.5-Coder-1.5B"}


def shared(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


async def type_session(options: dict[str, Any], keys: int) -> list[float]:
    """Open the neighbours and the cut file, then type ``keys`` characters back; each request's
    round trip in ms."""
    times: list[float] = []
    target = (PACKAGE / "decoder.py").read_text()
    cut = target.index("def py_scanstring")  # typed back from here; the rest of the file stays after it
    async with session(options, workspace=PACKAGE.as_uri()) as client:
        for name in ("encoder.py", "scanner.py"):
            item = types.TextDocumentItem((PACKAGE / name).as_uri(), "python", 1, (PACKAGE / name).read_text())
            client.text_document_did_open(types.DidOpenTextDocumentParams(item))
        uri = (PACKAGE / "decoder.py").as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "python", 1, target[:cut] + target[cut + keys :])))
        pos = types.Position(line=target[:cut].count("\n"), character=0)
        for version, ch in enumerate(target[cut : cut + keys], start=2):
            if ch == "\n":
                change = types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text="\n")
                client.text_document_did_change(types.DidChangeTextDocumentParams(
                    types.VersionedTextDocumentIdentifier(uri=uri, version=version), [change]))
                pos = types.Position(line=pos.line + 1, character=0)
            else:
                pos = type_text(client, uri, version, pos, ch)
            began = time.perf_counter()
            await inline(client, uri, pos)
            times.append((time.perf_counter() - began) * 1000)
    return times


async def phase1(keys: int) -> None:
    print("| family | context | prompts | prompt chars (mean) | context share | reused: mean | reused: p10 "
          "| before the cursor reused: mean | p10 | round trip p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for family, model in MODELS.items():
        for sources in (["imports", "open-files", "recent-edits"], []):  # imports on: the most context
            backend = await FakeBackend(model=model).start()
            backend.default = Reply(chunks=["x"])
            options = {"backend": {"endpoint": backend.url}, "completion": {
                "debounceMs": 0, "cacheSize": 0, "contextSources": sources, "commentedContext": bool(sources)}}
            try:
                times = sorted(await type_session(options, keys))
            finally:
                await backend.stop()
            prompts = [r.body["prompt"] for r in backend.generation_requests()]
            pairs = list(itertools.pairwise(prompts))
            reuse = sorted(shared(a, b) / len(b) for a, b in pairs)
            before = sorted(min(1.0, shared(a, b) / _cursor(b)) for a, b in pairs)
            head = statistics.fmean(_context_chars(p, family) / len(p) for p in prompts)
            print(f"| {family} | {'on' if sources else 'off'} | {len(prompts)} | "
                  f"{statistics.fmean(map(len, prompts)):.0f} | {head:.2f} | {statistics.fmean(reuse):.3f} | "
                  f"{reuse[len(reuse) // 10]:.3f} | {statistics.fmean(before):.3f} | {before[len(before) // 10]:.3f} | "
                  f"{statistics.median(times):.1f} / {times[int(len(times) * 0.99)]:.1f} |",
                  flush=True)


def _cursor(prompt: str) -> int:
    """Where the text before the cursor ends in the prompt (PSM families put the suffix after it)."""
    return prompt.find("<|fim_suffix|>") if "<|fim_suffix|>" in prompt else len(prompt)


def _context_chars(prompt: str, family: str) -> int:
    if family == "qwen2.5-coder":
        return prompt.find("<|file_sep|>decoder.py") + 1 if "<|file_sep|>decoder.py" in prompt else 0
    lines = prompt.split("\n")
    return sum(len(line) + 1 for line in lines if line.startswith("# Compare this snippet") or line.startswith("# "))


async def phase2(keys: int) -> None:
    from vllm_companion.config import EngineSettings
    from vllm_companion.engine.manager import EngineManager
    from vllm_companion.engine.registry import EngineRegistry

    manager = EngineManager(EngineSettings(kind="vllm", device="cpu"), lambda e: None, lambda a, b, c: None,
                            EngineRegistry(Path(tempfile.mkdtemp(prefix="bench-prefix-"))))
    if not await manager.acquire():
        raise SystemExit("engine failed")
    try:
        assert manager.endpoint
        url = manager.endpoint.removesuffix("/v1")
        print("\n| engine | context | requests | prefix-cache hit rate |\n|---|---|---|---|")
        for sources in (["imports", "open-files", "recent-edits"], []):  # imports on: the most context
            before = await engine_metrics([url], manager.api_key or "")
            options = {"backend": {"endpoint": manager.endpoint, "apiKey": manager.api_key}, "completion": {
                "debounceMs": 0, "cacheSize": 0, "contextSources": sources, "commentedContext": bool(sources)}}
            await type_session(options, keys)
            await asyncio.sleep(5)  # the counters lag
            after = await engine_metrics([url], manager.api_key or "")
            hits = (after["hits"] - before["hits"]) / max(1.0, after["queries"] - before["queries"])
            print(f"| CPU vLLM, {manager.model} | {'on' if sources else 'off'} | "
                  f"{after['requests'] - before['requests']:.0f} | {hits:.2f} |", flush=True)
    finally:
        await manager.release(stop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--engine", action="store_true", help="phase 2: the CPU vLLM's prefix-cache hit rate")
    args = parser.parse_args()
    asyncio.run(phase1(args.keys))
    if args.engine:
        asyncio.run(phase2(args.keys))


if __name__ == "__main__":
    main()
