"""Next-edit benchmark: cases built at run time from the installed standard library.

Each case is one stdlib function, one user edit (the history) and the edit that should follow,
in the categories the field scores (Sweep's blog: below / above / far jump / no edit):
- ``below``: a parameter renamed in the signature, its first use within the region below;
- ``far``: the same, the first use further away than the region reaches;
- ``above``: the only use renamed in the body, the signature above it is next;
- ``literal``: a string literal changed, its next occurrence in the function is next;
- ``argument``: a parameter added to a short module-level function, its first call site (within
  the region below) is next;
- ``none``: an unused parameter renamed: the right answer is no edit.
Rows: edit propagation (no model), each family's format end to end against a fake engine
replaying that family's right answer (the pipeline's fidelity, not a model's quality), and with
``--endpoint`` the generic prompt on a real engine (``--limit`` cases, ``--cap`` s each).
Scores: exact match per category, delta-chrF of the changed lines, no-edit precision (of the
"no edit" answers, how many were right), reversal rate (edits that put back the user's last
change), latency p50/p99 in ms.

    .venv/bin/python scripts/bench_next_edit.py [--cases 90] [--endpoint URL --model M | --local] [--limit 20]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import re
import statistics
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench_paths import prepare

prepare("bench-next-edit")

from tests.fake_backend import FakeBackend  # noqa: E402
from tests.nextedit_replay import replaying  # noqa: E402
from vllm_companion.backend.client import Backend  # noqa: E402
from vllm_companion.backend.connection import Connection  # noqa: E402
from vllm_companion.engine.registry import EngineRegistry  # noqa: E402
from vllm_companion.nextedit.edits import suggestions  # noqa: E402
from vllm_companion.nextedit.formats import BY_NAME  # noqa: E402
from vllm_companion.nextedit.model import ModelPredictor  # noqa: E402
from vllm_companion.nextedit.propagation import Lines, propagate, rename_of  # noqa: E402
from vllm_companion.nextedit.types import NextEditInput, RecordedEdit, Region, Suggestion  # noqa: E402
from vllm_companion.turns import Turns  # noqa: E402

ABOVE, BELOW = 3, 8  # the region: lines around the cursor
CATEGORIES = ("below", "above", "far", "literal", "argument", "none")
WORDISH = re.compile(r"[A-Za-z_]\w{2,30}")
Predict = Callable[["Case"], Awaitable[Suggestion | None]]


@dataclass
class Case:
    category: str
    lines: list[str]  # the document after the user's edit
    row: int  # the cursor, after the user's edit
    col: int
    last: RecordedEdit
    expected: list[str]  # the document after the right next edit (== lines: no edit)


def _replace(lines: list[str], row: int, col: int, old: str, new: str) -> list[str]:
    out = lines.copy()
    assert out[row][col : col + len(old)] == old
    out[row] = out[row][:col] + new + out[row][col + len(old) :]
    return out


def _case(category: str, lines: list[str], row: int, col: int, old: str, new: str, nxt: tuple[int, int] | None,
          cursor: int | None = None) -> Case:
    """The user replaced ``old`` at (row, col) by ``new``; the right next edit does the same at ``nxt``."""
    edited = _replace(lines, row, col, old, new)
    last = RecordedEdit("file:///bench.py", "bench.py", row, lines[row], edited[row])
    expected = edited if nxt is None else _replace(edited, nxt[0], nxt[1], old, new)
    return Case(category, edited, row, col + len(new) if cursor is None else cursor, last, expected)


def _params(fn: ast.FunctionDef) -> list[str]:
    return [a.arg for a in fn.args.args if a.arg not in ("self", "cls") and len(a.arg) > 1]


def _uses(fn: ast.FunctionDef, name: str) -> list[ast.Name]:
    return sorted((n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id == name),
                  key=lambda n: (n.lineno, n.col_offset))


def _rename(lines: list[str], fn: ast.FunctionDef) -> Case | None:
    """below / far / none (the signature renamed) or above (the only use renamed)."""
    sig = fn.lineno - 1
    for p in _params(fn):
        col = next((m.start() for m in re.finditer(rf"(?<![\w=.]){p}(?![\w=])", lines[sig])), None)
        if col is None:
            continue
        uses = _uses(fn, p)
        if not uses:
            return _case("none", lines, sig, col, p, p + "_v2", None)
        u = uses[0]
        r, c = u.lineno - 1, u.col_offset
        if len(uses) == 1 and 0 < r - sig <= ABOVE:
            return _case("above", lines, r, c, p, p + "_v2", (sig, col))
        return _case("far" if r - sig > BELOW - 1 else "below", lines, sig, col, p, p + "_v2", (r, c))
    return None


def _literal(lines: list[str], fn: ast.FunctionDef) -> Case | None:
    """The first of two equal short string literals on different lines changed; the second is next."""
    seen: dict[str, tuple[int, int]] = {}
    for n in sorted((n for n in ast.walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, str)),
                    key=lambda n: (n.lineno, n.col_offset)):
        v, r, c = n.value, n.lineno - 1, n.col_offset + 1
        if not WORDISH.fullmatch(v) or n.end_lineno != n.lineno or lines[r][c : c + len(v)] != v:
            continue
        if v in seen and seen[v][0] != r:
            first = seen[v]
            return _case("literal", lines, first[0], first[1], v, v + "_v2", (r, c))
        seen.setdefault(v, (r, c))
    return None


def _argument(lines: list[str], tree: ast.Module, fn: ast.FunctionDef) -> Case | None:
    """A parameter ``ctx`` added at the end of a one-line signature; its first call below gets ``ctx``."""
    a = fn.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs or not a.args:
        return None
    if fn.body[0].lineno == fn.lineno:
        return None  # "def f(x): return x": the signature line is the body too
    end = a.args[-1]
    if end.end_lineno != fn.lineno or end.end_col_offset is None:
        return None
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == fn.name and n.lineno > (fn.end_lineno or 0) and n.end_lineno == n.lineno
             and n.args and not n.keywords and n.end_col_offset is not None]
    if not calls:
        return None
    call = min(calls, key=lambda n: (n.lineno, n.col_offset))
    if call.lineno - fn.lineno > BELOW - 1:
        return None  # beyond the region: that is the ``far`` category's measure
    sig, at = fn.lineno - 1, end.end_col_offset
    edited = _replace(lines, sig, at, "", ", ctx")
    last = RecordedEdit("file:///bench.py", "bench.py", sig, lines[sig], edited[sig])
    expected = _replace(edited, call.lineno - 1, (call.end_col_offset or 0) - 1, "", ", ctx")
    return Case("argument", edited, sig, at + 5, last, expected)


def _cases(limit: int) -> list[Case]:
    per = max(1, limit // len(CATEGORIES))
    out: list[Case] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if {"site-packages", "dist-packages"} & set(path.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError):
            continue
        lines = text.split("\n")
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):  # module level: calls by name
            for case in (_rename(lines, fn), _literal(lines, fn), _argument(lines, tree, fn)):
                if case is not None and sum(c.category == case.category for c in out) < per:
                    out.append(case)
        if len(out) >= per * len(CATEGORIES):
            break
    return out


def _apply(lines: list[str], s: Suggestion) -> list[str]:
    text = "\n".join(lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    a, b = starts[s.start_row] + s.start_col, starts[s.end_row] + s.end_col
    return (text[:a] + s.text + text[b:]).split("\n")


def _region(c: Case) -> Region:
    r0, r1 = max(0, c.row - ABOVE), min(len(c.lines), c.row + BELOW)
    return Region("file:///bench.py", "bench.py", "python", r0, r1, "\n".join(c.lines[r0:r1]), c.row, c.col,
                  "\n".join(c.lines[max(0, r0 - 10) : r0]), "\n".join(c.lines[r1 : r1 + 10]))


def chrf(hyp: str, ref: str, n: int = 6, beta: float = 2.0) -> float:
    """chrF (Popović 2015): character n-gram F-beta, n = 1..6, averaged."""
    if not hyp and not ref:
        return 1.0
    scores = []
    for k in range(1, n + 1):
        h = Counter(hyp[i : i + k] for i in range(len(hyp) - k + 1))
        r = Counter(ref[i : i + k] for i in range(len(ref) - k + 1))
        match = sum((h & r).values())
        p, rc = match / max(1, sum(h.values())), match / max(1, sum(r.values()))
        scores.append(0.0 if p + rc == 0 else (1 + beta**2) * p * rc / (beta**2 * p + rc))
    return sum(scores) / len(scores)


def _delta(before: list[str], after: list[str]) -> str:
    return "\n".join(a for b, a in zip(before, after, strict=False) if a != b)


async def _run_row(name: str, cases: list[Case], predict: Predict) -> dict[str, object]:
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    lat, chrfs, reversals, edits, none_right, none_said = [], [], 0, 0, 0, 0
    for c in cases:
        t0 = time.perf_counter()
        got = await predict(c)
        lat.append((time.perf_counter() - t0) * 1000)
        after = _apply(c.lines, got) if got is not None else c.lines
        totals[c.category] += 1
        hits[c.category] += after == c.expected
        chrfs.append(chrf(_delta(c.lines, after), _delta(c.lines, c.expected)))
        if got is None:
            none_said += 1
            none_right += c.expected == c.lines
        else:
            edits += 1
            reversals += after[c.last.start_row] == c.last.before
    lat.sort()
    return {"row": name, **{k: f"{hits[k]}/{totals[k]}" for k in CATEGORIES},
            "chrF": round(statistics.mean(chrfs), 3), "no-edit precision": f"{none_right}/{none_said}",
            "reversals": f"{reversals}/{edits}", "p50 ms": round(lat[len(lat) // 2], 2),
            "p99 ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2)}


async def _propagation(c: Case) -> Suggestion | None:
    rename = rename_of(c.last)
    found = propagate(rename, Lines("file:///bench.py", c.lines), c.row, c.col, []) if rename else []
    return found[0].suggestion if found else None


def _model_row(backend: Backend, family: str, model: str, fake: FakeBackend | None, cap_s: float) -> Predict:
    predictor = ModelPredictor(backend, model, BY_NAME[family], Turns(), priority=False, cap_s=cap_s)

    async def predict(c: Case) -> Suggestion | None:
        region = _region(c)
        if fake is not None:  # replay the right answer: the new region, or no edit
            new = "\n".join(c.expected[region.start_row : region.end_row])
            fake.default = replaying(region, None if new == region.text else new)
        got = suggestions(region, await predictor.predict(NextEditInput(region, (c.last,))), c.last, family)
        return got[0] if got else None
    return predict


def _spread(cases: list[Case], limit: int) -> list[Case]:
    """At most ``limit`` cases, taken round-robin over the categories."""
    by = [[c for c in cases if c.category == k] for k in CATEGORIES]
    out = [c for group in zip(*by, strict=False) for c in group]
    return (out + [c for c in cases if c not in out])[:limit]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=90)
    ap.add_argument("--endpoint", help="a real engine: the generic prompt's row")
    ap.add_argument("--local", action="store_true", help="the running `vllm-companion engine start` engine "
                    "(its endpoint, model and key, from its record)")
    ap.add_argument("--model", default="", help="the served model id (with --endpoint)")
    ap.add_argument("--limit", type=int, default=20, help="cases sent to --endpoint")
    ap.add_argument("--cap", type=float, default=30.0, help="seconds per request to --endpoint")
    args = ap.parse_args()
    cases = _cases(args.cases)
    print(f"{len(cases)} cases: {dict(Counter(c.category for c in cases))}", file=sys.stderr)
    rows = [await _run_row("edit propagation", cases, _propagation)]
    fake = await FakeBackend().start()
    client = Backend(Connection(fake.url))
    for family in BY_NAME:
        rows.append(await _run_row(f"{family} (replayed)", cases, _model_row(client, family, "m", fake, 30.0)))
    await client.close()
    await fake.stop()
    key = None
    if args.local:
        record = EngineRegistry().read()
        args.endpoint, args.model, key = record.endpoint, record.model or "", record.api_key or None
    if args.endpoint:
        real = Backend(Connection(args.endpoint.rstrip("/"), args.model or None, key))
        subset = _spread(cases, args.limit)
        predict = _model_row(real, "generic", args.model, None, args.cap)
        rows.append(await _run_row(f"generic on {args.model} ({len(subset)} cases)", subset, predict))
        await real.close()
    print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    asyncio.run(main())
