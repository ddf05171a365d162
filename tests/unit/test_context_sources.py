"""Context sources one by one: budgets, exclusions, what each finds; the gatherer's deadline,
stability while typing, and its secret filter."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from vllm_companion.context import ContextGatherer
from vllm_companion.context.imports import Definitions, imported
from vllm_companion.context.parsing import parse
from vllm_companion.context.recent import recent
from vllm_companion.context.snippets import similar
from vllm_companion.context.sources import OpenDoc, Query, cost
from vllm_companion.documents import Change, DocumentStore, Position
from vllm_companion.privacy import Privacy


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def query(text: str, uri: str = "file:///w/a.py", language: str = "python", row: int | None = None) -> Query:
    ls = lines(text)
    return Query(uri, uri.rsplit("/", 1)[-1], language, len(ls) - 1 if row is None else row, ls)


# -- similar snippets of other open documents ----------------------------------------------------
def test_similar_picks_the_window_sharing_identifiers() -> None:
    filler = "".join(f"unrelated_{i} = {i}\n" for i in range(60))
    target = "def total_price(order_items, discount_rate):\n    return sum(order_items) * discount_rate\n"
    other = OpenDoc("file:///w/b.py", "b.py", lines(filler + target + filler))
    q = query("items = load()\nprice = total_price(order_items, discount_rate)\n")
    (snippet,) = similar(q, [other], 200)[:1]
    assert "def total_price" in snippet.text and snippet.source == "open-files"


def test_similar_respects_its_budget_and_finds_nothing_unrelated() -> None:
    doc = OpenDoc("file:///w/b.py", "b.py", lines("".join(f"alpha_{i} = beta_{i}\n" for i in range(400))))
    assert similar(query("gamma = delta\n"), [doc], 500) == []
    q = query("".join(f"alpha_{i} = beta_{i}\n" for i in range(20)))
    picked = similar(q, [doc], 300)
    assert 1 <= len(picked) < 10
    assert sum(map(cost, picked)) <= 300


# -- recent edits elsewhere ------------------------------------------------------------------------
def test_recent_edits_of_other_documents_newest_first_not_the_current_one() -> None:
    b = OpenDoc("file:///w/b.py", "b.py", lines("".join(f"line_{i}\n" for i in range(100))))
    a = OpenDoc("file:///w/a.py", "a.py", lines("x\n"))
    edits = [("file:///w/b.py", 10), ("file:///w/b.py", 11), ("file:///w/a.py", 0), ("file:///w/b.py", 70)]
    found = recent(query("x\n"), {b.uri: b, a.uri: a}, edits, 500)
    assert [s.text.splitlines()[0] for s in found] == ["line_66", "line_7"]  # 10 and 11: one neighbourhood
    assert recent(query("x\n"), {b.uri: b}, edits, 5) == []  # over the budget


def test_the_store_remembers_where_documents_were_edited() -> None:
    store = DocumentStore()
    store.open("file:///w/b.py", "python", 1, "a\nb\nc\n")

    class R:
        start = end = Position(2, 0)

    store.change("file:///w/b.py", 2, [Change("new\n", R())], "utf-16")
    assert list(store.edits) == [("file:///w/b.py", 2)]


# -- definitions imported from the workspace --------------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "geometry.py").write_text(
        'def area(width: float, height: float) -> float:\n    """Width times height."""\n    return width * height\n\n'
        "def unused():\n    return 0\n\nclass Shape:\n    sides: int = 0\n    def perimeter(self) -> float:\n"
        "        return 0.0\n"
    )
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "util.ts").write_text("export function clamp(x: number, lo: number): number {\n  return x\n}\n")
    (tmp_path / "web" / "io.h").write_text("int read_all(int fd, char *buf);\n")
    (tmp_path / ".env").write_text("SECRET=1\n")
    return tmp_path


def test_python_imports_give_the_signatures_of_imported_names(ws: Path) -> None:
    privacy = Privacy(roots=[ws.as_uri()])
    q = query("from pkg.geometry import area, Shape\nimport os\nfrom json import loads\n",
              uri=(ws / "main.py").as_uri())
    (snippet,) = imported(q, privacy.roots, Definitions(privacy), 500)
    assert snippet.path == "pkg/geometry.py" and snippet.source == "imports"
    assert "def area(width: float, height: float) -> float:" in snippet.text and "Width times height" in snippet.text
    assert "return width * height" not in snippet.text and "unused" not in snippet.text
    assert "def perimeter(self) -> float: ..." in snippet.text


def test_relative_js_and_c_includes_resolve(ws: Path) -> None:
    privacy = Privacy(roots=[ws.as_uri()])
    q = query('import { clamp } from "./util";\nimport React from "react";\n', uri=(ws / "web" / "app.ts").as_uri(),
              language="typescript")
    (snippet,) = imported(q, privacy.roots, Definitions(privacy), 500)
    assert snippet.text.startswith("export function clamp(x: number, lo: number): number {")
    (ws / "web" / "lib.js").write_text("function pick(a) {\n  return a\n}\nfunction drop(b) {\n  return b\n}\n"
                                       "module.exports = { pick, drop }\n")
    q = query('const { pick } = require("./lib")\nconst lib = require("./lib.js")\nconst fs = require("fs")\n',
              uri=(ws / "web" / "cli.js").as_uri(), language="javascript")
    named, whole = imported(q, privacy.roots, Definitions(privacy), 500)
    assert "function pick(a)" in named.text and "drop" not in named.text
    assert "function pick(a)" in whole.text and "function drop(b)" in whole.text
    q = query('#include "io.h"\n#include <stdio.h>\n', uri=(ws / "web" / "main.c").as_uri(), language="c")
    assert "read_all" in imported(q, privacy.roots, Definitions(privacy), 500)[0].text


def test_files_outside_the_workspace_or_secret_are_never_read(
    ws: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "leak.py").write_text("def leak(): pass\n")
    (ws / "pkg" / "linked.py").symlink_to(outside / "leak.py")
    (ws / "credentials.py").write_text("def password(): return 'x'\n")
    privacy = Privacy(roots=[ws.as_uri()])
    q = query("from pkg.linked import leak\nfrom credentials import password\n", uri=(ws / "main.py").as_uri())
    assert imported(q, privacy.roots, Definitions(privacy), 500) == []


def test_signatures_of_a_typescript_class() -> None:
    src = b"export class Cart extends Base {\n  total = 0\n  add(item: Item): void {\n    this.total += 1\n  }\n}\n"
    cart = "export class Cart extends Base {\n  total = 0\n  add(item: Item): void { ... }\n}"
    assert parse("typescript", src) == {"Cart": cart}


# -- the gatherer: deadline, stability, secrets -----------------------------------------------------
async def test_a_slow_source_is_skipped_not_waited_for(ws: Path) -> None:
    store = DocumentStore()
    privacy = Privacy(roots=[ws.as_uri()])
    gatherer = ContextGatherer(store, privacy)

    def slow_disk(uri: str, roots: list[Path]) -> str | None:  # a hung network mount, at the reader's boundary
        time.sleep(1.0)
        return privacy.read(uri, roots)

    gatherer.definitions = Definitions(privacy, read=slow_disk)
    store.open((ws / "b.py").as_uri(), "python", 1, "def area_of(width, height):\n    return width * height\n")
    uri = (ws / "main.py").as_uri()
    store.open(uri, "python", 1, "from pkg.geometry import area\nresult = area_of(width, height)\n")
    t0 = time.perf_counter()
    found = await gatherer.gather(uri, 1, ["imports", "open-files"], 400, 0.1)
    assert time.perf_counter() - t0 < 0.5
    assert [s.source for s in found] == ["open-files"]


async def test_context_stays_the_same_while_typing_in_the_block_and_drops_secrets() -> None:
    store = DocumentStore()
    gatherer = ContextGatherer(store, Privacy())
    token = "sk-proj-" + "a" * 40
    store.open("file:///w/p/b.py", "python", 1, f"def helper(alpha, beta):\n    return alpha + beta  # {token}\n")
    store.open("file:///w/p/.env", "python", 1, "def helper(alpha, beta): TOKEN=1\n")
    store.open("file:///w/p/a.py", "python", 1, "x = helper(alpha, beta)\n")
    first = await gatherer.gather("file:///w/p/a.py", 0, ["open-files"], 400, 1.0)
    assert [s.path for s in first] == ["b.py"] and "<redacted" in first[0].text and "sk-proj" not in first[0].text
    store.change("file:///w/p/a.py", 2, [Change("x = helper(alpha, beta)\ny = 1\n")], "utf-16")
    assert await gatherer.gather("file:///w/p/a.py", 1, ["open-files"], 400, 1.0) is first
    store.change("file:///w/p/b.py", 2, [Change("def other(gamma):\n    pass\n")], "utf-16")
    assert await gatherer.gather("file:///w/p/a.py", 1, ["open-files"], 400, 1.0) == ()
    await asyncio.sleep(0)


def test_the_context_budget_covers_the_rendered_snippets() -> None:
    """What the window gives up for context is at least what the rendered snippets take."""
    from vllm_companion.context import Snippet, context_tokens
    from vllm_companion.prompts import BY_NAME, FimContext, render_fim
    from vllm_companion.tokens import estimate_tokens

    snippets = (Snippet("pkg/a.py", "".join(f"x_{i} = {i}\n" for i in range(20)), "open-files"),
                Snippet("b.py", "def f():\n    pass\n", "imports"))
    for family in ("plain", "qwen2.5-coder", "starcoder2", "deepseek-coder"):
        ctx = FimContext("p", "s", "c.py", tuple((s.path, s.text) for s in snippets), "#")
        bare = render_fim(BY_NAME[family], FimContext("p", "s", "c.py"))
        extra = estimate_tokens(render_fim(BY_NAME[family], ctx)) - estimate_tokens(bare)
        assert extra <= context_tokens(snippets), family
