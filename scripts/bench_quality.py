#!/usr/bin/env python3
"""Completion quality on a held-out fill-in-the-middle set: our pipeline against the raw engine
call, and the pipeline with each stage or policy switched off in turn.

Cases are cut at run time, seeded, from real code on this machine that is not ours: the Python
standard library, npm's bundled JavaScript (/usr/lib/node_modules/npm), system C headers
(/usr/include). Kinds: end-of-line (the rest of a line, nothing after the cursor), mid-line (the
middle of a line whose closing brackets stay after the cursor), next-line (an emptied line, the
cursor after its indentation) and block (2-6 lines removed). Each case goes through the real
language server over stdio (an invoked inline completion) against the engine (the CPU vLLM with
SmolLM2-135M-Instruct by default, or --endpoint), opened at its real path, the source folders as
the workspace and the file's two neighbours in its folder open, as a user working there would
have them (context beyond the file: its imports, similar snippets of the open neighbours); the
baseline is the same engine called directly with the bare prefix, greedy, its text cut to the
target's number of lines.

Scores: exact; first line (the suggestion's first line is the target's); starts (the suggestion is
a non-empty prefix of the target: a partial accept); edit similarity (difflib ratio on the
suggestion cut to the target's lines); accepted (non-empty, and first line right or similarity
>= 0.8: what a user would keep); empty; overlong (more than twice the target's lines plus three:
text on screen the scores above, cut to the target, do not see); p50 latency.

Which stage empties answers (issue 20, point 4): the variant "unstaged" is the same prompt through the
same server with every stage switched off and a 60 s cap (the engine's own text: the completion's
seed comes from the prompt, so it is the text the stages saw); each stage is then replayed alone on
that text, and the first to cut, or the final clean-up, is charged with what it removed: answers it
emptied (and of those, the ones a user would have kept: the unstaged text, cut to the target's
lines, was accepted), and answers it made worse (edit similarity down by more than 0.1). "pipeline
60 s" is the full pipeline under the same cap, to check the replay (``--stages``).

    python scripts/bench_quality.py [--cases 120] [--variants raw,pipeline,...] [--endpoint URL --model M]
    python scripts/bench_quality.py --stages --cases 24 [--kind llamacpp]   # the per-stage table
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import random
import statistics
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_paths import prepare

prepare("bench-quality")  # its own state folder: the server learns nothing from a run

import httpx2 as httpx  # noqa: E402
from lsprotocol import types  # noqa: E402
from quality_stages import blame_table  # noqa: E402

from tests.lsp_session import inline, session  # noqa: E402

KINDS = ("end-of-line", "mid-line", "next-line", "block")
SOURCES = {"python": (Path(sysconfig.get_paths()["stdlib"]), "*.py"),
           "javascript": (Path("/usr/lib/node_modules/npm"), "*.js"),
           "c": (Path("/usr/include"), "*.h")}
ABLATIONS = ("stop", "single-line", "suffix-retype", "scope", "max-lines", "loops")
VARIANTS: dict[str, dict[str, Any]] = {
    "raw": {},
    "pipeline": {},
    "no context": {"contextSources": []},
    "with imports": {"contextSources": ["imports", "open-files", "recent-edits"]},
    "no open-files": {"contextSources": ["recent-edits"]},
    "window 512": {"maxPromptTokens": 512},
    "temperature 0": {"temperature": 0.0},
    "cap 30 s": {"timeoutMs": 30000},
    "pipeline 60 s": {"timeoutMs": 60000},
    "unstaged": {"timeoutMs": 60000, "ablate": list(ABLATIONS)},
    **{f"no {name}": {"ablate": [name]} for name in ABLATIONS},
}
CLOSERS = (");", "):", ")", "];", "]", "};", "}", '")', "')")


@dataclass(frozen=True)
class Case:
    language: str
    kind: str
    name: str
    prefix: str
    suffix: str
    target: str
    path: str = ""  # the real file it was cut from (the context variants open it there)


def build_cases(count: int, seed: int) -> list[Case]:
    """``count`` cases, languages and kinds in turn, from files present (a missing source is skipped)."""
    rng = random.Random(seed)
    pools = {lang: sorted(p for p in root.rglob(glob) if _usable(p))[:4000]
             for lang, (root, glob) in SOURCES.items() if root.is_dir()}
    pools = {lang: files for lang, files in pools.items() if files}
    out: list[Case] = []
    slots = [(lang, kind) for lang in pools for kind in KINDS]
    while len(out) < count and slots:
        lang, kind = slots[len(out) % len(slots)]
        for _ in range(50):  # a file with no line of this kind: try another
            case = _cut(rng, lang, kind, rng.choice(pools[lang]))
            if case is not None:
                out.append(case)
                break
    return out


def _usable(path: Path) -> bool:
    """The language's own code: no third-party packages in the stdlib folder, no tests, no giants."""
    skip = {"site-packages", "dist-packages", "test", "tests", "idlelib"}
    return not skip.intersection(path.parts) and path.is_file() and path.stat().st_size < 400_000


def _cut(rng: random.Random, lang: str, kind: str, path: Path) -> Case | None:
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    if len(lines) < 20:
        return None
    rows = [i for i in range(10, len(lines) - 6) if 12 <= len(lines[i].strip()) <= 100
            and not lines[i].lstrip().startswith(("#", "//", "/*", "*", '"""'))]
    if kind == "mid-line":
        rows = [i for i in rows if lines[i].rstrip().endswith(CLOSERS)]
    if not rows:
        return None
    row = rng.choice(rows)
    head, line = "".join(lines[:row]), lines[row].rstrip("\n")
    indent = line[: len(line) - len(line.lstrip())]
    rest = "".join(lines[row + 1:])
    if kind == "end-of-line":
        cut = len(indent) + rng.randint(len(line.strip()) * 3 // 10, len(line.strip()) * 8 // 10)
        return Case(lang, kind, path.name, head + line[:cut], "\n" + rest, line[cut:], str(path))
    if kind == "mid-line":
        closer = next(c for c in CLOSERS if line.rstrip().endswith(c))
        body = line.rstrip()[: -len(closer)]
        cut = len(indent) + rng.randint(len(body.strip()) * 3 // 10, len(body.strip()) * 8 // 10)
        return Case(lang, kind, path.name, head + body[:cut], closer + "\n" + rest, body[cut:], str(path))
    if kind == "next-line":
        return Case(lang, kind, path.name, head + indent, "\n" + rest, line.strip(), str(path))
    size = rng.randint(2, 6)
    block = lines[row: row + size]
    if any(not x.strip() for x in block):
        return None
    target = "".join(block).rstrip("\n")[len(indent):]
    return Case(lang, kind, path.name, head + indent, "\n" + "".join(lines[row + size:]), target, str(path))


def score(case: Case, text: str | None) -> dict[str, float]:
    got = (text or "").rstrip()
    want = case.target.rstrip()
    got_cut = "\n".join(got.split("\n")[: want.count("\n") + 1]).rstrip()
    first_got, first_want = got_cut.split("\n")[0].strip(), want.split("\n")[0].strip()
    sim = difflib.SequenceMatcher(None, got_cut, want).ratio() if got_cut else 0.0
    first = float(bool(first_got) and first_got == first_want)
    overlong = got.count("\n") > 2 * want.count("\n") + 3  # more than the target, cut or not: noise on screen
    return {"exact": float(bool(got_cut) and got_cut.strip() == want.strip()), "first line": first,
            "overlong": float(overlong),
            "starts": float(bool(got_cut.strip()) and want.strip().startswith(got_cut.strip())),
            "edit sim": sim, "accept": float(bool(got_cut.strip()) and (first == 1.0 or sim >= 0.8)),
            "empty": float(not got_cut.strip())}


async def raw_call(http: httpx.AsyncClient, endpoint: str, model: str, case: Case) -> str:
    """The bare prefix (its tail, halved until the engine takes it: no tokenizer here), greedy."""
    chars = 8000
    while True:
        body = {"model": model, "prompt": case.prefix[-chars:], "max_tokens": 64, "temperature": 0.0}
        resp = await http.post(f"{endpoint}/completions", json=body)
        if resp.status_code != 400 or chars < 500:
            resp.raise_for_status()
            return str(resp.json()["choices"][0]["text"])
        chars //= 2


async def run_variant(name: str, cases: list[Case], endpoint: str, model: str, key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if name == "raw":
        async with httpx.AsyncClient(timeout=180, headers={"Authorization": f"Bearer {key}"} if key else {}) as http:
            for case in cases:
                began = time.perf_counter()
                text = await raw_call(http, endpoint, model, case)
                rows.append({**score(case, text), "ms": (time.perf_counter() - began) * 1000, "text": text})
        return rows
    completion = {"debounceMs": 0, "cacheSize": 0, **VARIANTS[name]}
    first_token_s = max(10.0, completion.get("timeoutMs", 0) / 1000)  # a 60 s cap waits 60 s for a cold prompt
    options = {"backend": {"endpoint": endpoint, "model": model, "apiKey": key, "firstTokenTimeoutS": first_token_s},
               "completion": completion}
    async with session(options, workspace=[root.as_uri() for root, _ in SOURCES.values()]) as client:
        for case in cases:
            began = time.perf_counter()
            got = await _complete_in_workspace(client, case)
            rows.append({**score(case, got), "ms": (time.perf_counter() - began) * 1000, "text": got})
    return rows


async def _complete_in_workspace(client: Any, case: Case) -> str | None:
    """The case as the user would have it: the file at its real path with its two neighbours in
    the folder open (context: open files; its imports resolve in the workspace)."""
    path = Path(case.path)
    siblings = sorted(p for p in path.parent.glob("*" + path.suffix) if p != path and _usable(p))
    at = next((i for i, p in enumerate(siblings) if p.name > path.name), len(siblings))
    opened = [(p.as_uri(), p.read_text(errors="replace")) for p in siblings[max(0, at - 1): at + 1]]
    opened.append((path.as_uri(), case.prefix + case.suffix))
    for uri, text in opened:
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id=case.language, version=1, text=text)))
    line = case.prefix.count("\n")
    col = len(case.prefix) - (case.prefix.rfind("\n") + 1)
    col16 = len(case.prefix[len(case.prefix) - col:].encode("utf-16-le")) // 2
    try:
        return await inline(client, path.as_uri(), types.Position(line=line, character=col16))
    finally:
        for uri, _ in opened:
            client.text_document_did_close(types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri)))


def summary(name: str, rows: list[dict[str, Any]]) -> str:
    keys = ("exact", "first line", "starts", "edit sim", "accept", "empty", "overlong")
    means = [statistics.fmean(r[k] for r in rows) for k in keys]
    latency = statistics.median(r["ms"] for r in rows)
    return f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {latency:.0f} |"


def by_group(cases: list[Case], results: dict[str, list[dict[str, Any]]], field: str) -> list[str]:
    groups = sorted({getattr(c, field) for c in cases})
    out = [f"| accept / edit sim by {field} | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for name, rows in results.items():
        cells = []
        for g in groups:
            picked = [r for c, r in zip(cases, rows, strict=True) if getattr(c, field) == g]
            cells.append(f"{statistics.fmean(r['accept'] for r in picked):.2f} / "
                         f"{statistics.fmean(r['edit sim'] for r in picked):.2f}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


async def main_async(args: argparse.Namespace) -> tuple[list[Case], dict[str, list[dict[str, Any]]]]:
    cases = build_cases(args.cases, args.seed)
    manager = None
    endpoint, model, key = args.endpoint, args.model, args.api_key or ""
    if endpoint is None:
        from vllm_companion.config import EngineSettings
        from vllm_companion.engine.manager import EngineManager
        from vllm_companion.engine.registry import EngineRegistry

        manager = EngineManager(EngineSettings(kind=args.kind, device="cpu"), lambda e: None, lambda a, b, c: None,
                                EngineRegistry(Path(tempfile.mkdtemp(prefix="bench-quality-"))))
        if not await manager.acquire():
            raise SystemExit("engine failed")
        endpoint, model, key = manager.endpoint, manager.model, manager.api_key
    assert endpoint and model
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        print(f"{len(cases)} cases: " + ", ".join(f"{lang} {sum(c.language == lang for c in cases)}"
                                                  for lang in SOURCES), flush=True)
        print("| variant | exact | first line | starts | edit sim | accept | empty | overlong | p50 ms |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in args.variants.split(","):
            results[name] = await run_variant(name, cases, endpoint, model, key)
            print(summary(name, results[name]), flush=True)
    finally:
        if manager is not None:
            await manager.release(stop=True)
    for field in ("kind", "language"):
        print("\n" + "\n".join(by_group(cases, results, field)))
    if "unstaged" in results:
        print("\n" + "\n".join(blame_table(cases, results["unstaged"], results.get("pipeline 60 s"), model,
                                            ABLATIONS, score)))
    return cases, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (no commas in names)")
    parser.add_argument("--endpoint", help="an OpenAI-compatible /v1 endpoint (default: start the CPU vLLM)")
    parser.add_argument("--model")
    parser.add_argument("--api-key")
    parser.add_argument("--kind", choices=["vllm", "llamacpp"], default="vllm", help="the CPU engine to start")
    parser.add_argument("--stages", action="store_true",
                        help="the per-stage table: variants raw, pipeline 60 s, unstaged (unless --variants)")
    parser.add_argument("--dump", help="write every case's suggestion and scores here (JSON lines)")
    args = parser.parse_args()
    if args.stages and args.variants == ",".join(VARIANTS):
        args.variants = "raw,pipeline 60 s,unstaged"
    cases, results = asyncio.run(main_async(args))
    if args.dump:  # every suggestion, to see which cases a stage wins or loses
        Path(args.dump).write_text("".join(json.dumps({"variant": name, "case": case.__dict__, **row}) + "\n"
                                           for name, rows in results.items()
                                           for case, row in zip(cases, rows, strict=True)))


if __name__ == "__main__":
    main()
