"""Next-edit prompt formats as data, one record per model family, each with where it comes from.

A next-edit model rewrites an *editable region* around the cursor given the user's recent
edits. The format must be the one the model was trained on: a mismatched format is the main
failure people report when self-hosting these models (Zed's issues about self-hosted Zeta 2
deleting regions and leaking sentinel text), so every family is rendered here, client-side,
and checked against golden files (tests/data/golden/nextedit/). Layout keeps a stable head for
vLLM's prefix cache where the trained format allows it: fixed instructions first, history next,
the region last (Zeta 2's trained SPM order puts the text below the region first; we keep it).

Families (nextedit/parse.py turns each one's answer back into the region's new text):
- ``sweep``: Sweep next-edit 0.5B/1.5B/7B (Qwen2.5-Coder fine-tunes, Apache-2.0), raw prompt.
- ``zeta``: Zed's Zeta 1 (Qwen2.5-Coder-7B fine-tune), raw prompt, Alpaca-style headers.
- ``zeta2``: Zed's Seed-Coder format with a ``NO_EDITS`` sentinel (``V0304SeedNoEdits``); the
  later numbered-region variants (``<|marker_N|>``, V0316+) are left out (docs/next-edit.md).
- ``instinct``: Continue's Instinct (Qwen2.5-Coder-7B fine-tune), chat messages.
- ``generic``: any instruct model (Qwen2.5-Coder-Instruct): chat, the region or ``NO_EDIT``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace

from .markers import defuse, label
from .types import NextEditInput, RecordedEdit, Region

Prompt = str | list[dict[str, str]]  # a raw completion prompt, or chat messages

REGION_START = "<|editable_region_start|>"
REGION_END = "<|editable_region_end|>"
ZETA_CURSOR = "<|user_cursor_is_here|>"  # Zeta 1 and Instinct
ZED_CURSOR = "<|user_cursor|>"  # Zeta 2 and our generic prompt
SWEEP_CURSOR = "<|cursor|>"
FILE_SEP = "<|file_sep|>"
SEED_SUFFIX, SEED_PREFIX, SEED_MIDDLE, SEED_FILE = "<[fim-suffix]>", "<[fim-prefix]>", "<[fim-middle]>", "<filename>"
SEED_CURRENT, SEED_SEPARATOR, SEED_UPDATED = "<<<<<<< CURRENT\n", "=======\n", ">>>>>>> UPDATED"
SEED_NO_EDITS = "NO_EDITS"
GENERIC_NO_EDIT = "NO_EDIT"

ZETA_INSTRUCTION = (
    "### Instruction:\nYou are a code completion assistant and your task is to analyze user edits and then rewrite an "
    "excerpt that the user provides, suggesting the appropriate edits within the excerpt, taking into account the "
    "cursor location.\n\n### User Edits:\n\n"
)
INSTINCT_SYSTEM = (  # our short statement of Continue's task description (theirs is longer; see docs/next-edit.md)
    "You predict the next edit a developer will make inside the code between <|editable_region_start|> and "
    "<|editable_region_end|>. \"### Context\" holds snippets of related files (<|context_file|> path, <|snippet|>, "
    "content); \"### User Edits:\" holds their recent changes as unified diffs, most recent first; \"### User "
    "Excerpt:\" holds the current file around the region, with <|user_cursor_is_here|> at the cursor. Output only "
    "the revised code of the region, without the tags or the cursor marker; do not undo the developer's last change."
)
INSTINCT_USER_PREFIX = (
    "Use the user excerpt, the user edits and the snippets to understand the developer's intent, and update the "
    "editable region of the user excerpt with the changes they would make next."
)
GENERIC_SYSTEM = (
    "You predict a programmer's next edit. You get their recent edits (oldest first) and the file around the "
    f"cursor, where the lines between {REGION_START} and {REGION_END} may be rewritten and {ZED_CURSOR} marks the "
    "cursor. Continue what the recent edits started (a rename, a new argument, a changed literal) inside the "
    "region. Answer with the whole rewritten region in one fenced code block, without the markers, and nothing "
    f"else. If the region needs no change, answer exactly {GENERIC_NO_EDIT}."
)


@dataclass(frozen=True)
class NextEditFormat:
    name: str
    match: tuple[str, ...]  # lower-case substrings of a served model's id that select this family
    layout: Callable[[NextEditInput], Prompt]  # the trained format; ``render`` defuses its input first
    stop: tuple[str, ...]  # the answer's end (sent as ``stop``, and cut on by our own stage too)
    sentinels: tuple[str, ...]  # marker text that must never reach an edit
    max_tokens: int
    temperature: float
    source: str

    @property
    def chat(self) -> bool:
        return self.name in ("instinct", "generic")

    def render(self, inp: NextEditInput) -> Prompt:
        """The prompt, with marker text in the context (lines around the region, the history, the
        path, the language id) defused: it cannot re-frame the prompt (markers.py). The region is
        not touched (it is diffed against the answer): model.py never sends one that leaks."""
        return self.layout(defused(inp))


def defused(inp: NextEditInput) -> NextEditInput:
    r = inp.region
    region = replace(r, path=label(r.path), language_id=label(r.language_id, 64), before=defuse(r.before),
                     after=defuse(r.after))
    history = tuple(replace(e, path=label(e.path), before=defuse(e.before), after=defuse(e.after))
                    for e in inp.history)
    return NextEditInput(region, history)


def with_cursor(region: Region, marker: str) -> str:
    """The region's text with ``marker`` at the cursor (clamped into the region)."""
    lines = region.text.split("\n")
    row = min(max(region.cursor_row - region.start_row, 0), len(lines) - 1)
    col = min(max(region.cursor_col, 0), len(lines[row]))
    lines[row] = lines[row][:col] + marker + lines[row][col:]
    return "\n".join(lines)


def hunks(edit: RecordedEdit) -> str:
    """The edit as unified-diff hunks (no file header), lines numbered within the excerpt."""
    diff = difflib.unified_diff(edit.before.split("\n"), edit.after.split("\n"), lineterm="", n=3)
    return "\n".join(list(diff)[2:])


def _lines(*parts: str) -> str:
    """Non-empty parts (lines joined with "\\n", as in types.py), each ended with a newline."""
    return "".join(p + "\n" for p in parts if p)


def render_sweep(inp: NextEditInput) -> str:
    """https://huggingface.co/sweepai/sweep-next-edit-v2-7B (prompt format): the file, recent changes as
    original/updated blocks, then the block before the last edit, now (with the cursor), and ``updated/``."""
    r = inp.region
    span = f"{r.path}:{sweep_span(r)}"
    changes = "".join(f"{FILE_SEP}{e.path}.diff\noriginal:\n{_lines(e.before)}updated:\n{_lines(e.after)}"
                      for e in inp.history)
    return (f"{FILE_SEP}{r.path}\n{_lines(r.before, r.text, r.after)}{changes}"
            f"{FILE_SEP}original/{span}\n{_lines(_original(inp))}"
            f"{FILE_SEP}current/{span}\n{_lines(with_cursor(r, SWEEP_CURSOR))}"
            f"{FILE_SEP}updated/{span}\n")


def sweep_span(region: Region) -> str:
    """``{s}:{e}`` of the ``original/ current/ updated/`` headers as Sweep's own server writes them
    (sweep_autocomplete's next_edit_autocomplete.py, ``_fetch_next_edits_core``; the Rust port of
    the v2-7B ``inference.py`` agrees): not file lines but ``s`` = the cursor's 1-based line
    within the block, ``e`` = ``s`` + the block's line count (``len(block.splitlines())``)."""
    s = min(max(region.cursor_row - region.start_row, 0), max(region.end_row - region.start_row - 1, 0)) + 1
    return f"{s}:{s + len(region.text.splitlines())}"


def _original(inp: NextEditInput) -> str:
    """The region before the user's last edit in this file (the region itself when it is elsewhere)."""
    last = next((e for e in reversed(inp.history) if e.uri == inp.region.uri), None)
    if last is None:
        return inp.region.text
    before, after = _changed_lines(last.before.split("\n"), last.after.split("\n"))
    if not after or after not in inp.region.text:
        return inp.region.text
    return inp.region.text.replace(after, before, 1)


def _changed_lines(before: list[str], after: list[str]) -> tuple[str, str]:
    """The edit without its context lines (those equal at both ends)."""
    while before and after and before[0] == after[0]:
        before, after = before[1:], after[1:]
    while before and after and before[-1] == after[-1]:
        before, after = before[:-1], after[:-1]
    return "\n".join(before), "\n".join(after)


def render_zeta(inp: NextEditInput) -> str:
    """zed-industries/zed crates/zeta_prompt/src/zeta_prompt.rs, ``mod zeta1`` (format_zeta1_prompt)."""
    r = inp.region
    events = "\n\n".join(f"User edited {e.path}:\n```diff\n{hunks(e)}\n```" for e in inp.history)
    above = r.before.count("\n") + 1 if r.before else 0
    start = "<|start_of_file|>\n" if r.start_row - above <= 0 else ""  # the excerpt starts the file
    excerpt = (f"```{r.path}\n{start}{_lines(r.before)}{REGION_START}\n{with_cursor(r, ZETA_CURSOR)}\n{REGION_END}"
               f"{chr(10) + r.after if r.after else ''}\n```")
    return f"{ZETA_INSTRUCTION}{events}\n\n### User Excerpt:\n\n{excerpt}\n\n### Response:\n"


def render_zeta2(inp: NextEditInput) -> str:
    """zed-industries/zed crates/zeta_prompt/src/zeta_prompt.rs, ``mod seed_coder`` (SPM order: the text
    below the region, then history and the region; the model writes the new region and ``>>>>>>> UPDATED``)."""
    r = inp.region
    events = "".join(("// User accepted prediction:\n" if e.accepted else "")
                     + f"--- a/{e.path}\n+++ b/{e.path}\n{_lines(hunks(e))}" for e in inp.history)
    history = f"{SEED_FILE}edit_history\n{events}\n" if events else ""
    return (f"{SEED_SUFFIX}{_lines(r.after)}{SEED_PREFIX}{history}{SEED_FILE}{r.path}\n{_lines(r.before)}"
            f"{SEED_CURRENT}{_lines(with_cursor(r, ZED_CURSOR))}{SEED_SEPARATOR}{SEED_MIDDLE}")


def render_instinct(inp: NextEditInput) -> list[dict[str, str]]:
    """continuedev/continue core/nextEdit/templating/instinct.ts and NextEditPromptEngine.ts (the
    ``instinct`` template): edits most recent first, markers on lines of their own."""
    r = inp.region
    edits = "\n".join(f'User edited file "{e.path}"\n\n```diff\n{hunks(e)}\n```' for e in reversed(inp.history))
    window = "\n".join(p for p in (r.before, REGION_START, with_cursor(r, ZETA_CURSOR), REGION_END, r.after) if p)
    user = (f"{INSTINCT_USER_PREFIX}\n\n### Context:\n\n\n### User Edits:\n\n{edits}\n\n### User Excerpt:\n{r.path}"
            f"\n\n{window}```\n### Response:")
    return [{"role": "system", "content": INSTINCT_SYSTEM}, {"role": "user", "content": user}]


def render_generic(inp: NextEditInput) -> list[dict[str, str]]:
    """Our own editable-region prompt for any instruct model; the instructions are the stable head."""
    r = inp.region
    edits = "\n\n".join(f"{e.path}:\n```diff\n{hunks(e)}\n```" for e in inp.history) or "(none)"
    window = "\n".join(p for p in (r.before, REGION_START, with_cursor(r, ZED_CURSOR), REGION_END, r.after) if p)
    user = f"Recent edits:\n{edits}\n\nFile {r.path} ({r.language_id}):\n```\n{window}\n```"
    return [{"role": "system", "content": GENERIC_SYSTEM}, {"role": "user", "content": user}]


SWEEP = NextEditFormat(
    name="sweep", match=("sweep",), layout=render_sweep, stop=("<|endoftext|>", FILE_SEP),
    sentinels=(FILE_SEP, SWEEP_CURSOR, "<|endoftext|>", "<|fim_", "<|im_"), max_tokens=512, temperature=0.0,
    source="https://huggingface.co/sweepai/sweep-next-edit-v2-7B ; https://blog.sweep.dev/posts/oss-next-edit",
)
ZETA = NextEditFormat(
    name="zeta", match=("zeta",), layout=render_zeta, stop=(REGION_END,),
    sentinels=(REGION_START, REGION_END, ZETA_CURSOR, "<|start_of_file|>", "<|endoftext|>", "<|im_"),
    max_tokens=1024, temperature=0.0,
    source="https://github.com/zed-industries/zed/blob/main/crates/zeta_prompt/src/zeta_prompt.rs (mod zeta1)",
)
ZETA2 = NextEditFormat(
    name="zeta2", match=("zeta-2", "zeta2", "zeta_2"), layout=render_zeta2,
    stop=(SEED_UPDATED, "<[end▁of▁sentence]>"),
    # the conflict markers whole (SEED_CURRENT, SEED_UPDATED; the separator as a line: parse.py), not
    # their runs of "=" or "<": a region may hold a comment ruler ("# ======")
    sentinels=(SEED_SUFFIX, SEED_PREFIX, SEED_MIDDLE, SEED_FILE, SEED_CURRENT.strip(), SEED_UPDATED, ZED_CURSOR,
               "<|marker_", "<[end▁of▁sentence]>"),
    max_tokens=1024, temperature=0.0,
    source="https://github.com/zed-industries/zed/blob/main/crates/zeta_prompt/src/zeta_prompt.rs (mod seed_coder)",
)
INSTINCT = NextEditFormat(
    name="instinct", match=("instinct",), layout=render_instinct, stop=("<|im_end|>", "<|endoftext|>"),
    sentinels=(REGION_START, REGION_END, ZETA_CURSOR, "<|context_file|>", "<|snippet|>", "<|im_", "<|endoftext|>"),
    max_tokens=1024, temperature=0.0,
    source="https://github.com/continuedev/continue/tree/main/core/nextEdit (templating/instinct.ts, constants.ts)",
)
GENERIC = NextEditFormat(
    name="generic", match=(), layout=render_generic, stop=(),
    sentinels=(REGION_START, REGION_END, ZED_CURSOR, "<|im_", "<|endoftext|>"), max_tokens=1024, temperature=0.0,
    source="(ours: any instruct model; the region in a fenced block, or NO_EDIT)",
)

FORMATS: tuple[NextEditFormat, ...] = (SWEEP, ZETA2, ZETA, INSTINCT, GENERIC)  # zeta2 before zeta: first match wins
BY_NAME = {f.name: f for f in FORMATS}


def detect_family(model_id: str, setting: str = "auto") -> NextEditFormat:
    """``nextEdit.family`` when it names a family, else the first family whose ``match`` is in the
    served model's id, else ``generic`` (any instruct model)."""
    if setting in BY_NAME:
        return BY_NAME[setting]
    lowered = model_id.lower()
    return next((f for f in FORMATS if any(m in lowered for m in f.match)), GENERIC)
