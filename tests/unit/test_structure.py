"""The layout rules, checked by reading the code (docs/architecture.md)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "server" / "vllm_companion"
EDGE = PACKAGE / "lsp"
MAX_FUNCTION_LINES = 40


def modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(PACKAGE.rglob("*.py"))]


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_lsp_edge_imports_pygls_or_lsprotocol() -> None:
    leaks = [str(p.relative_to(PACKAGE)) for p, tree in modules()
             if EDGE not in p.parents and imported(tree) & {"pygls", "lsprotocol"}]
    assert leaks == [], f"LSP types below the edge: {leaks}"
    assert any(imported(tree) & {"pygls"} for p, tree in modules() if EDGE in p.parents)  # the check sees imports


def test_no_function_over_40_lines() -> None:
    long = [f"{p.relative_to(PACKAGE)}:{node.name} ({node.end_lineno - node.lineno + 1})"
            for p, tree in modules() for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and (node.end_lineno or 0) - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_the_extension_manifest_follows_the_one_action_catalog() -> None:
    """The VS Code extension keeps no action list of its own: its manifest's entries for the
    server's actions are exactly the catalog (the language client registers the commands)."""
    from vllm_companion.actions import ACTIONS

    manifest = json.loads((ROOT / "extension" / "package.json").read_text())["contributes"]
    titles = {c["command"]: c["title"] for c in manifest["commands"] if c["command"] in {a.command for a in ACTIONS}}
    assert titles == {a.command: f"vLLM Companion: {a.title}" for a in ACTIONS}
    menu = [m["command"] for m in manifest["menus"]["editor/context"]]
    assert menu == [a.command for a in ACTIONS]
    source = "\n".join(p.read_text() for p in (ROOT / "extension" / "src").rglob("*.ts"))
    for action in ACTIONS:
        assert action.command not in source, f"{action.command} named in the extension's TypeScript"
