#!/usr/bin/env python3
"""Measure the loop guard on real code: false cuts, detection speed per loop kind, cost per token.

Corpus, built at run time from the Python standard library (and any other installed source):
- false cuts: N real continuations (cursor after a line's indentation, then the next 1-20 real
  lines), a quarter of them drawn on purpose from naturally repetitive places (runs of lines
  with the same shape: tables, enums, asserts, ``case`` arms, closing brackets). Each is
  streamed through the detectors token by token; any cut is a false cut.
- detection: synthetic loops built from real lines: a repeated line, a repeated block of 2-5
  lines, an in-line unit (1-3 real tokens repeated), and numbered lines (``x1 = 1``, ...).
  Reported: share caught while streaming, tokens streamed after the loop started, repeats seen.
Tokens are approximated by a regex (words, newlines, runs of up to 8 spaces, single punctuation),
which gives somewhat more tokens than a BPE tokenizer: the figures are conservative.

    python scripts/bench_repetition.py [--samples 4000] [--loops 400] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sysconfig
import time
from pathlib import Path

from bench_paths import importable

importable()

from vllm_companion.streaming import Pipeline  # noqa: E402
from vllm_companion.streaming.lines import normalize, skeleton  # noqa: E402
from vllm_companion.streaming.loops import loop_detectors  # noqa: E402

TOKEN = re.compile(r"\n|[ \t]{1,8}|\w+|[^\w\s]")
LINE_OCCURRENCES = 3


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


GENERATED = re.compile(r"generated (from|by)|do not edit|automatically generated", re.I)


def load_files(limit: int, rng: random.Random, generated: bool) -> list[list[str]]:
    """Standard-library sources; ``generated=False`` leaves out machine-generated tables
    (``encodings/cp*.py`` from gencodec.py and the like): nobody types those in an editor."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    rng.shuffle(paths)
    files = []
    for path in paths[:limit]:
        try:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (UnicodeDecodeError, OSError):
            continue
        if len(lines) > 30 and (generated or not GENERATED.search("".join(lines[:12]))):
            files.append(lines)
    return files


def repetitive_positions(files: list[list[str]]) -> list[tuple[int, int]]:
    """(file, line) where the next 3 lines share a shape or a first word: tables, asserts, enums..."""
    out = []
    for f, lines in enumerate(files):
        for i in range(5, len(lines) - 4):
            window = lines[i : i + 3]
            shapes = {skeleton(x) for x in window}
            heads = {x.split(maxsplit=1)[0] if x.split() else "" for x in window}
            if (len(shapes) == 1 and shapes != {""}) or (len(heads) == 1 and heads != {""}):
                out.append((f, i))
    return out


def stream(text: str, prefix: str = "") -> tuple[str | None, int, int]:
    """Stream ``text`` after ``prefix``; returns (cut reason, tokens streamed at the stop, cut offset)."""
    pipe = Pipeline(loop_detectors(prefix, LINE_OCCURRENCES))
    streamed = 0
    for tok in tokens(text):
        streamed += 1
        if pipe.feed(tok):
            return pipe.cut.reason if pipe.cut else None, streamed, pipe.cut.at if pipe.cut else 0
    pipe.close()
    return (pipe.cut.reason, streamed, pipe.cut.at) if pipe.cut else (None, streamed, len(text))


def false_cuts(files: list[list[str]], n: int, rng: random.Random) -> tuple[int, int, list[str], float]:
    rep = repetitive_positions(files)
    cuts, total_tokens, elapsed = 0, 0, 0.0
    examples: list[str] = []
    for k in range(n):
        if k % 4 == 0 and rep:
            f, i = rng.choice(rep)
        else:
            f = rng.randrange(len(files))
            i = rng.randrange(5, len(files[f]) - 2)
        lines = files[f]
        first = lines[i]
        indent = first[: len(first) - len(first.lstrip())]
        continuation = first[len(indent) :] + "".join(lines[i + 1 : i + rng.randint(1, 20)])
        prefix = "".join(lines[max(0, i - 80) : i]) + indent
        t0 = time.perf_counter()
        reason, streamed, _ = stream(continuation, prefix)
        elapsed += time.perf_counter() - t0
        total_tokens += streamed
        if reason:
            cuts += 1
            if len(examples) < 5:
                examples.append(f"{reason}: {continuation[:160]!r}")
    return cuts, total_tokens, examples, elapsed


def cost(files: list[list[str]], rng: random.Random, n: int = 1500) -> tuple[float, float]:
    """Streaming cost per token, and the per-request setup (context from the prefix), apart."""
    samples = []
    for _ in range(n):
        lines = files[rng.randrange(len(files))]
        i = rng.randrange(5, len(lines) - 2)
        samples.append(("".join(lines[max(0, i - 80) : i]), tokens("".join(lines[i : i + 20]))))
    t0 = time.perf_counter()
    pipes = [Pipeline(loop_detectors(prefix)) for prefix, _ in samples]
    setup = (time.perf_counter() - t0) / n * 1e6
    count = 0
    t0 = time.perf_counter()
    for pipe, (_, toks) in zip(pipes, samples, strict=True):
        for tok in toks:
            count += 1
            if pipe.feed(tok):
                break
    return (time.perf_counter() - t0) / count * 1e6, setup


def real_lines(files: list[list[str]], rng: random.Random, pred) -> list[str]:  # type: ignore[no-untyped-def]
    pool = [x for lines in files for x in lines if pred(x)]
    rng.shuffle(pool)
    return pool


def detection(files: list[list[str]], n: int, rng: random.Random) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    lines = real_lines(files, rng, lambda x: len(normalize(x)) >= 8 and not x.strip().startswith("#"))

    def measure(kind: str, cases: list[tuple[str, int, int]]) -> None:
        caught, after, reps = 0, [], []
        for text, loop_start_tok, unit_toks in cases:
            reason, streamed, _ = stream(text)
            if reason and reason.startswith("loop:"):
                caught += 1
                after.append(max(0, streamed - loop_start_tok))
                reps.append(max(0, streamed - loop_start_tok) / max(1, unit_toks))
        results[kind] = {
            "cases": len(cases),
            "caught_pct": 100 * caught / max(1, len(cases)),
            "tokens_after_start_p50": statistics.median(after) if after else float("nan"),
            "tokens_after_start_max": max(after) if after else float("nan"),
            "repeats_max": max(reps) if reps else float("nan"),
        }

    cases = []
    for line in lines[:n]:
        unit = line if line.endswith("\n") else line + "\n"
        cases.append((unit * 30, len(tokens(unit)), len(tokens(unit))))
    measure("line", cases)

    cases = []
    flat = [x for lines_ in files for x in lines_]
    while len(cases) < n:
        size = rng.randint(2, 5)
        i = rng.randrange(len(flat) - size)
        block = flat[i : i + size]
        if sum(len(normalize(x)) >= 3 for x in block) < 2 or len({normalize(x) for x in block}) < 2:
            continue
        unit = "".join(b if b.endswith("\n") else b + "\n" for b in block)
        cases.append((unit * 20, len(tokens(unit)), len(tokens(unit))))
    measure("block", cases)

    cases = []
    for line in lines[:n]:
        toks = tokens(line.strip())
        if len(toks) < 3:
            continue
        j = rng.randrange(1, len(toks))
        k = rng.randint(1, 3)
        unit = "".join(toks[j : j + k])
        if not unit.strip():
            continue
        head = "".join(toks[:j])
        cases.append((head + unit * 80, len(tokens(head + unit)), len(tokens(unit))))
    measure("inline", cases)

    cases = []
    for line in lines[:n]:
        name = re.search(r"[A-Za-z_]\w*", line)
        if not name:
            continue
        stem = name.group(0)[:12]
        body = "".join(f"{stem}{i} = {i}\n" for i in range(1, 60))
        first = f"{stem}1 = 1\n"
        cases.append((body, len(tokens(first)), len(tokens(first))))
    measure("numbered", cases)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--loops", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--line-occurrences", type=int, default=3, help="copies of a line that make a loop")
    args = parser.parse_args()
    global LINE_OCCURRENCES
    LINE_OCCURRENCES = args.line_occurrences
    for generated in (False, True):
        rng = random.Random(args.seed)
        files = load_files(args.files, rng, generated)
        cuts, toks, examples, _elapsed = false_cuts(files, args.samples, rng)
        label = "all files" if generated else "hand-written files (generated tables left out)"
        print(f"corpus, {label}: {len(files)} stdlib files; {args.samples} real continuations, {toks} tokens")
        print(f"  false cuts: {cuts}/{args.samples} = {100 * cuts / args.samples:.3f} %")
        for ex in examples[:3]:
            print("    e.g.", ex)
    per_token, setup = cost(files, rng)
    print(f"cost: {per_token:.2f} us per streamed token (all detectors), {setup:.0f} us setup per request")
    for kind, r in detection(files, args.loops, rng).items():
        print(
            f"{kind:9s} loops: caught {r['caught_pct']:.1f} % of {r['cases']:.0f}; tokens after loop start "
            f"p50 {r['tokens_after_start_p50']:.0f}, max {r['tokens_after_start_max']:.0f}; "
            f"repeats of the unit at most {r['repeats_max']:.1f}"
        )


if __name__ == "__main__":
    main()
