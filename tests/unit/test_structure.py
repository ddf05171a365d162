"""The layout rules, checked by reading the code (docs/architecture.md)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "server" / "vllm_companion"
EDGE = PACKAGE / "lsp"
PLANNING = PACKAGE / "engine" / "planning"
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


LEAVES = {"vllm_companion.model_ids"}  # shared leaves (they import nothing of the package)


def outside_planning(tree: ast.Module) -> list[str]:
    """The package modules a module of engine/planning/ imports from outside it (relative imports
    read from the package ``vllm_companion.engine.planning``), shared leaves aside."""
    base = ["vllm_companion", "engine", "planning"]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            up = base[:len(base) - node.level + 1] if node.level else []
            names.append(".".join([*up, *([node.module] if node.module else [])]))
    return [n for n in names if n.split(".")[0] == "vllm_companion"
            and not n.startswith("vllm_companion.engine.planning") and n not in LEAVES]


def test_planning_imports_nothing_from_the_running_side() -> None:
    """engine/planning/ decides from facts alone (docs/architecture.md): it never imports the
    engine's processes, registry or the settings, so a plan can be made and tested anywhere."""
    found = {str(p.relative_to(PACKAGE)): outside_planning(tree) for p, tree in modules() if PLANNING in p.parents}
    assert len(found) >= 9, "the check sees the planning package"
    assert {k: v for k, v in found.items() if v} == {}
    probe = "from ..supervisor import X\nimport vllm_companion.engine.registry\nfrom ...config import Y\n" \
            "from .plan import Z\nfrom ...model_ids import lookup"
    leaks = outside_planning(ast.parse(probe))
    assert leaks == ["vllm_companion.engine.supervisor", "vllm_companion.engine.registry", "vllm_companion.config"]
    leaf = ast.parse((PACKAGE / "model_ids.py").read_text())
    assert not [n for n in ast.walk(leaf) if isinstance(n, ast.ImportFrom) and n.level], "a leaf imports nothing"


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


ENVIRONMENT_READERS = {"paths.py"}  # the process environment's one reader (docs/architecture.md)


ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv", "expandvars"}


def reads_environment(node: ast.AST) -> bool:
    """``environ``/``getenv``/... as an attribute of anything (``os``, an alias of it, ``posix``,
    ``sys.modules["os"]``, ``importlib.import_module("os")``), looked up by name
    (``getattr(os, "environ")``, ``os.__dict__["environ"]``, ``vars(os)[...]``), imported (``from
    os import *`` too), ``posix``/``nt`` imported at all, or ``/proc/self/environ`` named."""
    names = ENVIRONMENT_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in names
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value in names
    if isinstance(node, ast.Call):
        return any(isinstance(a, ast.Constant) and a.value in names for a in node.args)
    if isinstance(node, ast.ImportFrom):
        return node.module in ("os", "posix", "nt") and bool({a.name for a in node.names} & (names | {"*"}))
    if isinstance(node, ast.Import):
        return any(a.name in ("posix", "nt") for a in node.names)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and "self/environ" in node.value


def environment_reads(tree: ast.Module) -> list[int]:
    """Lines that read or change the process environment (``reads_environment``)."""
    return sorted({node.lineno for node in ast.walk(tree) if reads_environment(node) and hasattr(node, "lineno")})


def test_only_paths_reads_the_environment() -> None:
    """Folders and tunables from the environment are resolved once, in paths.py (issue 21, point
    6); everyone else asks it, and children get their environment from ``paths.child_env``."""
    found = {str(p.relative_to(PACKAGE)): lines for p, tree in modules() if (lines := environment_reads(tree))}
    assert set(found) == ENVIRONMENT_READERS, found
    sample = "import os\nfrom os import getenv\nos.environ.get('X')\nenv = {**os.environ}\nos.getenv('Y')"
    assert sorted(environment_reads(ast.parse(sample))) == [2, 3, 4, 5]  # the check sees every form
    bypasses = ["import os as o\no.environ['X']", "import os\ngetattr(os, 'environ')", "os.__dict__['environ']",
                "importlib.import_module('os').environ", "sys.modules['os'].environ", "import posix",
                "from posix import environ", "from os import *", "vars(os)['getenv']('X')",
                "open('/proc/self/environ')", "os.path.expandvars('$HOME')"]
    assert [b for b in bypasses if not environment_reads(ast.parse(b))] == []  # tests/adversarial/test_paths.py


def package_of(path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The top-level names of the package (a subpackage or a module) that an import names."""
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] for a in node.names if a.name.startswith("vllm_companion.")]
    if node.level == 0:
        parts = (node.module or "").split(".")
        return parts[1:2] if parts[0] == "vllm_companion" and len(parts) > 1 else []
    here = list(path.relative_to(PACKAGE).parts[:-1])
    base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    return base[:1] if base else [a.name for a in node.names]


def subpackage_graph() -> dict[str, set[str]]:
    """Which subpackages each subpackage of ``vllm_companion`` imports, lazy imports included."""
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    graph: dict[str, set[str]] = {name: set() for name in subpackages}
    for path, tree in modules():
        owner = path.relative_to(PACKAGE).parts[0]
        for node in ast.walk(tree):
            if owner in subpackages and isinstance(node, ast.Import | ast.ImportFrom):
                graph[owner].update(t for t in package_of(path, node) if t in subpackages and t != owner)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path (first node repeated at the end), or [] if there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            if found := visit(nxt, [*path, node]):
                return found
        done.add(node)
        return []

    return next((c for start in sorted(graph) if (c := visit(start, []))), [])


def test_no_import_cycle_between_subpackages() -> None:
    """Arrows between subpackages point one way (issue 21): ``completion/`` uses ``context/``, so
    nothing in ``context/`` may import ``completion/`` (what both need sits in a leaf module,
    tokens.py, as the token budgets do)."""
    graph = subpackage_graph()
    assert "context" in graph["completion"]  # the check sees relative imports
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # and finds cycles
    assert find_cycle(graph) == []


def test_token_budgets_are_a_leaf() -> None:
    """tokens.py, which completion/, context/ and chat/ all take their budgets from, imports
    nothing from the package: it can never close a cycle."""
    path = PACKAGE / "tokens.py"
    tree = ast.parse(path.read_text())
    names = [t for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)
             for t in package_of(path, node)]
    assert names == []
