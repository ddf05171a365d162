"""``vllm-companion stats`` and doctor's one line: acceptance read back from the local store."""

from __future__ import annotations

from typing import Any

from .events import Event, summarize

COLUMNS = ("shown", "accepted", "rate", "partial", "dismissed", "survived30", "survived120")


def table(events: list[Event]) -> str:
    """Acceptance by language, cursor kind and model, as aligned text."""
    if not any(e.event == "shown" for e in events):
        return "no suggestions shown yet (events are kept on this machine only)"
    out: list[str] = []
    for by in ("language", "kind", "model"):
        rows = summarize(events, by)
        width = max(len(by), *(len(k) for k in rows))
        out.append(f"{by:<{width}}  " + "  ".join(f"{c:>11}" for c in COLUMNS))
        out.extend(f"{key:<{width}}  " + "  ".join(_cell(row[c]) for c in COLUMNS) for key, row in rows.items())
        out.append("")
    out.append("survivedN: share of an accepted suggestion's characters still there N seconds later")
    return "\n".join(out)


def one_line(events: list[Event]) -> str:
    shown = sum(e.event == "shown" for e in events)
    if not shown:
        return "no suggestions shown yet"
    accepted = sum(e.event == "accepted" for e in events)
    kept = [e.value for e in events if e.event == "survived120" and e.value is not None]
    survival = f", {sum(kept) / len(kept):.0%} of accepted text still there after 2 min" if kept else ""
    return f"{accepted} of {shown} suggestions accepted ({accepted / shown:.0%}){survival}"


def _cell(value: Any) -> str:
    if value is None:
        return f"{'-':>11}"
    if isinstance(value, float):
        return f"{value:>11.0%}"
    return f"{value:>11}"
