"""Which stream stage or clean-up empties or shortens a completion (issue 20, point 4), for
scripts/bench_quality.py ``--stages``.

The engine's own text for a case is the "unstaged" variant's answer: the same prompt through the
same server with every stage switched off (``completion.ablate``) under a 60 s cap; the seed comes
from the prompt (sampling.py), so it is the text the stages saw. Each stage is replayed alone on it
(completion/postprocess.py's ``stages_for`` with the others off), the whole pipeline and the final
clean-up (``finisher``) after it, as the server runs them. The stage that cut first is charged with
the difference between the engine's text and the suggestion; the clean-up when no stage cut.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vllm_companion.completion.postprocess import finisher, stages_for
from vllm_companion.completion.window import build_window
from vllm_companion.documents import Document
from vllm_companion.prompts import resolve_family
from vllm_companion.tokens import Budget

WORSE = 0.1  # edit similarity lost (or gained) that counts as a worse (better) suggestion
MAX_LINES = 16  # completion.maxLines' default


@dataclass(frozen=True)
class Replay:
    stage: str  # the first stage to cut, "finish" (the clean-up alone changed it) or "-" (nothing)
    text: str  # the suggestion: stages, then the clean-up


def replay(prefix: str, suffix: str, language: str, model: str, unstaged: str, stages: Sequence[str]) -> Replay:
    doc = Document.from_text("file:///case", language, 1, prefix + suffix)
    row, col = prefix.count("\n"), len(prefix) - (prefix.rfind("\n") + 1)
    window = build_window(doc, row, col, Budget.for_model(2048, 128, 2048))
    family = resolve_family(model)
    cuts: dict[str, int] = {}
    for name in stages:
        alone = stages_for(family, window, MAX_LINES, [n for n in stages if n != name])
        alone.feed(unstaged)
        alone.close()
        if alone.cut is not None:
            cuts[name] = alone.cut.at
    full = stages_for(family, window, MAX_LINES)
    full.feed(unstaged)
    full.close()
    text = finisher(window)(full.text)
    first = min(cuts, key=lambda n: cuts[n]) if cuts else ("finish" if text != unstaged else "-")
    return Replay(first, text)


def blame_table(cases: Sequence[Any], unstaged: Sequence[dict[str, Any]], piped: Sequence[dict[str, Any]] | None,
                model: str, stages: Sequence[str], score: Callable[[Any, str | None], dict[str, float]]) -> list[str]:
    """The per-stage table (markdown lines): how often each stage cut first, the answers it
    emptied (and those a user would have kept), made worse or better by ``WORSE`` similarity."""
    counts: dict[str, Counter[str]] = {}
    same = 0
    for i, (case, row) in enumerate(zip(cases, unstaged, strict=True)):
        raw = row["text"] or ""
        r = replay(case.prefix, case.suffix, case.language, model, raw, stages)
        c = counts.setdefault(r.stage, Counter())
        c["cases"] += 1
        before, after = score(case, raw), score(case, r.text)
        if raw.strip() and not r.text.strip():
            c["emptied"] += 1
            c["emptied, kept"] += int(before["accept"])
        elif after["edit sim"] < before["edit sim"] - WORSE:
            c["worse"] += 1
        elif after["edit sim"] > before["edit sim"] + WORSE:
            c["better"] += 1
        c["accept lost"] += int(before["accept"] and not after["accept"])
        c["accept won"] += int(after["accept"] and not before["accept"])
        same += piped is not None and (piped[i]["text"] or "") == (r.text or "")
    engine_empty = sum(not (row["text"] or "").strip() for row in unstaged)
    out = ["| first cut by | cases | emptied | emptied, a user would have kept | worse (sim -0.1) | better (sim +0.1) "
           "| accepts lost | accepts won |", "|---|---|---|---|---|---|---|---|"]
    for name in [*stages, "finish", "-"]:
        if (c := counts.get(name)) is not None:
            label = "(none)" if name == "-" else name
            out.append(f"| {label} | {c['cases']} | {c['emptied']} | {c['emptied, kept']} | {c['worse']} | "
                       f"{c['better']} | {c['accept lost']} | {c['accept won']} |")
    sims = [score(case, row["text"])["edit sim"] for case, row in zip(cases, unstaged, strict=True)]
    out.append(f"\n{len(cases)} cases; the engine's own text was empty in {engine_empty}; unstaged edit sim "
               f"{statistics.fmean(sims):.3f}" + (f"; replay = the server's \"pipeline 60 s\" answer in {same}"
                                                 if piped is not None else ""))
    return out
