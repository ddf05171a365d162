#!/usr/bin/env python3
"""Fixed against adaptive debounce, for typists of different speeds.

A simulated typist types real code (a line of the standard library) into the real language
server over stdio: every key a didChange and an automatic inline-completion request, the previous
one cancelled (as VS Code does). Key intervals are seeded log-normal around the typist's median
(sigma 0.35), with a pause of 0.6-1.4 s after some words, where the typist waits for the
suggestion. The engine is the fake OpenAI-compatible server answering after ``--engine-ms`` (the
CPU engine's time to a short suggestion), so only the policy differs between runs.

Reported per typist and policy: requests that reached the engine per 100 keys (work the engine
did, most of it for suggestions nobody saw) and the pause-to-suggestion latency p50/p90 (what
the user waits). Fixed: ``completion.debounceMs`` 150 (the default); adaptive: the same setting
plus ``adaptiveDebounce`` (completion/debounce.py). Bounded: ``--keys`` per run.

    python scripts/bench_debounce.py [--keys 240] [--engine-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sysconfig
import time
from pathlib import Path

from bench_paths import prepare

prepare("bench-debounce")

from lsprotocol import types  # noqa: E402

from tests.fake_backend import FakeBackend, Reply  # noqa: E402
from tests.lsp_session import cancel, send_inline, session, type_text  # noqa: E402

TYPISTS = {"fast (90 ms)": 0.09, "average (150 ms)": 0.15, "slow (250 ms)": 0.25}


def lines(count: int) -> list[str]:
    """Code lines to type, from the standard library (seeded)."""
    rng = random.Random(3)
    source = (Path(sysconfig.get_paths()["stdlib"]) / "argparse.py").read_text().splitlines()
    picked = [x.strip() for x in source if 30 <= len(x.strip()) <= 70 and not x.strip().startswith("#")]
    rng.shuffle(picked)
    out, total = [], 0
    while total < count:
        out.append(picked[len(out)])
        total += len(out[-1])
    return out


async def typist(backend: FakeBackend, median_s: float, adaptive: bool, keys: int) -> tuple[int, list[float]]:
    rng = random.Random(11)
    options = {"backend": {"endpoint": backend.url}, "completion": {"debounceMs": 150, "adaptiveDebounce": adaptive}}
    waits: list[float] = []
    typed = 0
    async with session(options) as client:
        uri = "file:///bench/typing.py"
        client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, "\n")))
        version, pending = 1, None
        for row, line in enumerate(lines(keys)):
            pos = types.Position(line=row, character=0)
            for ch in line + "\n":
                version += 1
                if ch == "\n":
                    change = types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text="\n")
                    client.text_document_did_change(types.DidChangeTextDocumentParams(
                        types.VersionedTextDocumentIdentifier(uri=uri, version=version), [change]))
                    pos = types.Position(line=row + 1, character=0)
                else:
                    pos = type_text(client, uri, version, pos, ch)
                typed += 1
                if pending is not None and not pending[1].done():
                    cancel(client, pending[0])
                pending = send_inline(client, uri, pos, automatic=True)
                pending[1].add_done_callback(lambda f: f.cancelled() or f.exception())
                if ch == " " and rng.random() < 0.25:  # the typist pauses and waits for a suggestion
                    began = time.perf_counter()
                    await asyncio.wait_for(asyncio.shield(pending[1]), 10)
                    waits.append((time.perf_counter() - began) * 1000)
                    await asyncio.sleep(rng.uniform(0.6, 1.4))
                else:
                    await asyncio.sleep(rng.lognormvariate(0, 0.35) * median_s)
                if typed >= keys:
                    return typed, waits
    return typed, waits


async def main_async(keys: int, engine_ms: int) -> None:
    print("| typist | debounce | keys | engine requests / 100 keys | pause to suggestion p50 ms | p90 ms |")
    print("|---|---|---|---|---|---|")
    for name, median in TYPISTS.items():
        for adaptive in (False, True):
            backend = await FakeBackend().start()
            backend.default = Reply(chunks=["value"], first_delay_s=engine_ms / 1000)
            try:
                typed, waits = await typist(backend, median, adaptive, keys)
            finally:
                await backend.stop()
            waits.sort()
            served = len(backend.generation_requests())
            print(f"| {name} | {'adaptive' if adaptive else 'fixed 150 ms'} | {typed} | {100 * served / typed:.0f} | "
                  f"{statistics.median(waits):.0f} | {waits[int(len(waits) * 0.9)]:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=240)
    parser.add_argument("--engine-ms", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main_async(args.keys, args.engine_ms))


if __name__ == "__main__":
    main()
