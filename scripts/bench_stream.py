#!/usr/bin/env python3
"""CPU cost of the stream stage pipeline per answer size (issue 9: a long stream was quadratic).

Feeds N chunks of 100 random code-like characters through the chat pipeline (every loop
detector) and the completion pipeline (all stages), and prints seconds per run. Linear growth
means the cost per chunk stays flat as N doubles. Usage: python scripts/bench_stream.py
"""

from __future__ import annotations

import random
import time

from bench_paths import importable

importable()

from vllm_companion.streaming import Pipeline  # noqa: E402
from vllm_companion.streaming.loops import loop_detectors  # noqa: E402


def main() -> None:
    rng = random.Random(1)
    chunks = ["".join(rng.choice("abcdefghij klmnop()=+\n") for _ in range(100)) for _ in range(16000)]
    print("chunks  chars      seconds  us/chunk")
    for n in (2000, 4000, 8000, 16000):
        pipe = Pipeline(loop_detectors())
        t0 = time.perf_counter()
        for chunk in chunks[:n]:
            pipe.feed(chunk)
        took = time.perf_counter() - t0
        print(f"{n:6d}  {len(pipe.text):9d}  {took:7.3f}  {took / n * 1e6:8.1f}")


if __name__ == "__main__":
    main()
