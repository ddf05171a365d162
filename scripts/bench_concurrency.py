#!/usr/bin/env python3
"""N simulated editors typing real code at once, each through its own language server.

Each editor opens a real Python file from this machine's standard library with one line of a
function emptied down to its indentation (as an editor auto-indents), and types it back at
human speed (seeded: 80-160 ms a key, a pause after a word now and then and at the line's end,
as people pause to read a suggestion). Every
keystroke is a didChange and an automatic inline-completion request, the previous one cancelled,
as VS Code does. At each pause the editor waits for its suggestion: keystroke-to-suggestion latency.

Reported per configuration: requests the engine served per 100 keystrokes (vLLM /metrics), p50
and p99 keystroke-to-suggestion, suggestions per second, empty answers, and the engine's prefix
cache hit rate. Targets: one CPU engine, or (--replicas 2) two replicas behind vllm-router; with
--chat one more editor streams chat answers throughout. Bounded: --keys per editor, --max-s per run.

    python scripts/bench_concurrency.py [--editors 1,2,5,10,20] [--replicas 1|2] [--chat] [--keys 40]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_paths import prepare

prepare("bench-concurrency")

import httpx2 as httpx  # noqa: E402
from lsprotocol import types  # noqa: E402

from tests.lsp_session import cancel, capture_partials, first_text, send_inline, session, type_text  # noqa: E402
from vllm_companion.config import EngineSettings  # noqa: E402
from vllm_companion.engine.manager import EngineManager  # noqa: E402
from vllm_companion.engine.registry import EngineRegistry  # noqa: E402

CAP_S = 6.0  # the completion cap (5 s) plus slack: a suggestion later than this is a miss


def cases(count: int, seed: int) -> list[tuple[str, str, int]]:
    """(file text with a line removed, the line, its row) from real stdlib files, seeded."""
    rng = random.Random(seed)
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    out: list[tuple[str, str, int]] = []
    while len(out) < count:
        lines = rng.choice(files).read_text(errors="replace").splitlines()[:400]
        rows = [i for i, x in enumerate(lines) if 25 <= len(x.strip()) <= 70 and x.startswith("        ")
                and not x.strip().startswith(("#", '"', "'"))]
        if rows:
            row = rng.choice(rows)
            indent = lines[row][:len(lines[row]) - len(lines[row].lstrip())]  # the editor auto-indents
            out.append(("\n".join([*lines[:row], indent, *lines[row + 1:]]) + "\n", lines[row].lstrip(), row))
    return out


async def editor(options: dict[str, Any], case: tuple[str, str, int], keys: int, seed: int,
                 stats: dict[str, list[Any]]) -> None:
    text, line, row = case
    rng = random.Random(seed)
    async with session(options) as client:
        uri = f"file:///bench/e{seed}.py"
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        indent = len(text.splitlines()[row])
        pos, version, pending = types.Position(line=row, character=indent), 1, None
        for ch in line[:keys]:
            version += 1
            pos = type_text(client, uri, version, pos, ch)
            if pending is not None and not pending[1].done():
                cancel(client, pending[0])
            pending = (*send_inline(client, uri, pos, automatic=True), time.perf_counter())
            pending[1].add_done_callback(lambda f: f.cancelled() or f.exception())  # cancelled ones: expected
            stats["keys"].append(1)
            pause = rng.uniform(0.6, 1.4) if (ch in " .(:," and rng.random() < 0.35) else 0.0
            if pause:
                await _suggestion(pending, stats)
            await asyncio.sleep(max(pause, rng.uniform(0.08, 0.16)))
        if pending is not None:
            await _suggestion(pending, stats)


async def _suggestion(pending: tuple[str, Any, float], stats: dict[str, list[Any]]) -> None:
    _, future, sent = pending
    try:
        result = await asyncio.wait_for(asyncio.shield(future), CAP_S)
    except (TimeoutError, Exception):
        stats["missed"].append(1)
        return
    stats["latency"].append((time.perf_counter() - sent) * 1000)
    stats["empty"].append(0 if first_text(result) else 1)


async def chatter(options: dict[str, Any], stop: asyncio.Event) -> int:
    answers = 0
    async with session(options) as client:
        capture_partials(client)
        while not stop.is_set():
            question = {"messages": [{"role": "user", "content": "Explain Python's asyncio with examples."}],
                        "partialResultToken": f"c{answers}", "maxTokens": 256}
            await client.protocol.send_request_async("vllmCompanion/chat", question)
            answers += 1
    return answers


async def engine_metrics(urls: list[str], key: str) -> dict[str, float]:
    out = {"requests": 0.0, "hits": 0.0, "queries": 0.0}
    # Every request the engine prefilled counts once in the TTFT histogram; request_success_total
    # misses the ones whose client hung up (every cancelled or cut completion).
    names = {"vllm:time_to_first_token_seconds_count": "requests", "vllm:prefix_cache_hits_total": "hits",
             "vllm:prefix_cache_queries_total": "queries"}
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {key}"}) as http:
        for url in urls:
            for row in (await http.get(f"{url}/metrics")).text.splitlines():
                name = row.split("{", 1)[0]
                if name in names:
                    out[names[name]] += float(row.rsplit(" ", 1)[1])
    return out


async def run_one(options: dict[str, Any], urls: list[str], key: str, editors: int, chat: bool,
                  keys: int, max_s: float) -> str:
    stats: dict[str, list[Any]] = {"keys": [], "latency": [], "empty": [], "missed": []}
    before = await engine_metrics(urls, key)
    stop = asyncio.Event()
    chat_task = asyncio.create_task(chatter(options, stop)) if chat else None
    began = time.perf_counter()
    work = [editor(options, c, keys, i, stats) for i, c in enumerate(cases(editors, 7))]
    try:
        await asyncio.wait_for(asyncio.gather(*work), max_s)
    except TimeoutError:
        pass
    wall = time.perf_counter() - began
    stop.set()
    chats = await chat_task if chat_task else 0
    await asyncio.sleep(5)  # the engine's counters lag its requests by a few seconds
    after = await engine_metrics(urls, key)
    lat = sorted(stats["latency"]) or [float("nan")]
    served = after["requests"] - before["requests"] - chats
    hit = (after["hits"] - before["hits"]) / max(1.0, after["queries"] - before["queries"])
    return (f"| {editors} | {'yes' if chat else 'no'} | {len(stats['keys'])} | "
            f"{100 * served / max(1, len(stats['keys'])):.0f} | {statistics.median(lat):.0f} | "
            f"{lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.0f} | {len(lat) / wall:.2f} | "
            f"{sum(stats['empty']) / max(1, len(stats['empty'])):.2f} | {len(stats['missed'])} | {hit:.2f} |")


async def main_async(args: argparse.Namespace) -> None:
    settings = EngineSettings(kind="vllm", device="cpu", replicas=args.replicas)
    manager = EngineManager(settings, lambda e: None, lambda a, b, c: None,
                            EngineRegistry(Path(tempfile.mkdtemp(prefix="bench-conc-"))))
    if not await manager.acquire():
        raise SystemExit("engine failed")
    assert manager.endpoint and manager.model
    root = manager.endpoint.removesuffix("/v1")
    urls = [root]
    if args.replicas > 1:
        async with httpx.AsyncClient() as http:
            urls = list((await http.get(f"{root}/list_workers")).json()["urls"])
    options = {"backend": {"endpoint": manager.endpoint, "model": manager.model, "apiKey": manager.api_key},
               "chat": {"maxTokens": 256}}
    target = f"vllm-router over {args.replicas} CPU replicas" if args.replicas > 1 else "one CPU engine"
    print(f"target: {target}")
    print("| editors | chat | keystrokes | engine requests / 100 keys | p50 ms | p99 ms | suggestions/s "
          "| empty | missed | prefix-cache hits |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        for n in [int(x) for x in args.editors.split(",")]:
            for chat in ([False, True] if args.chat else [False]):
                print(await run_one(options, urls, manager.api_key, n, chat, args.keys, args.max_s), flush=True)
    finally:
        await manager.release(stop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--editors", default="1,2,5,10,20")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--chat", action="store_true", help="each size again with a chat streaming throughout")
    parser.add_argument("--keys", type=int, default=40, help="keystrokes per editor")
    parser.add_argument("--max-s", type=float, default=120, help="bound on one configuration's run")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
