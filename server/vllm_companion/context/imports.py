"""Definitions of the symbols the current file imports from the workspace.

Rule: parse the current document (its first ``MAX_SOURCE`` bytes) with tree-sitter, take its
imports that resolve to a file in the workspace (Python ``from m import a``, relative or from a
workspace root; JavaScript/TypeScript ``import {a} from "./m"`` and CommonJS ``require("./m")``;
C ``#include "m.h"``), and
give the signatures of the imported names (definitions.py). The standard library and installed
packages are left out: the model knows those already. "The workspace" is ``Privacy.scope`` of the
current document: its folders, or the document's own folder when the editor declared none; every
file is read through the privacy filter, and every parse is bounded (parsing.py).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..privacy import Privacy, path_of
from .definitions import GRAMMARS, signature, text, top_level
from .parsing import parse
from .sources import Query, Snippet, fit

MAX_SOURCE, MAX_FILES = 64_000, 8
EXTENSIONS = {".py": "python", ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript",
              ".cjs": "javascript", ".ts": "typescript", ".tsx": "tsx", ".h": "c", ".c": "c",
              ".hpp": "cpp", ".hh": "cpp", ".cpp": "cpp", ".cc": "cpp"}
_JS_SUFFIXES = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", "/index.ts", "/index.js")
Reader = Callable[[str, Sequence[Path]], "str | None"]  # uri, roots -> text, through the privacy filter
Import = tuple[Path, list[str]]  # a workspace file and the names taken from it


class Definitions:
    """Parsed files by (resolved path, size, mtime, inode): a file is parsed again only when it
    changed. The privacy filter is asked on every use, a cache hit included: a file the user has
    excluded since, that became secret, or that left the workspace folders is not served from the
    cache (issue 19: excluded definitions stayed in completions)."""

    def __init__(self, privacy: Privacy, size: int = 64, read: Reader | None = None) -> None:
        self.privacy, self.size = privacy, size
        self.read: Reader = read or privacy.read
        self._cache: OrderedDict[tuple[str, int, int, int], dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()  # sources of several documents run in threads at once

    def of(self, path: Path, roots: Sequence[Path]) -> dict[str, str]:
        """Name -> signature for what ``path`` defines at top level ("*": the whole C header)."""
        real, _ = self.privacy.readable(path.as_uri(), roots)
        try:
            info = os.lstat(real) if real is not None else None
        except OSError:
            info = None
        if real is None or info is None:
            return {}
        key = (str(real), info.st_size, info.st_mtime_ns, info.st_ino)
        with self._lock:
            if (hit := self._cache.get(key)) is not None:
                self._cache.move_to_end(key)
                return hit
        found = self._parse(EXTENSIONS.get(path.suffix), real, roots)
        if found is None:  # not parsed (budget, or being parsed elsewhere): nothing kept
            return {}
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return found

    def _parse(self, grammar: str | None, real: Path, roots: Sequence[Path]) -> dict[str, str] | None:
        content = self.read(real.as_uri(), roots) if grammar is not None else None
        if content is None or grammar is None:
            return {}
        if grammar in ("c", "cpp"):
            return {"*": content}
        source = content.encode("utf-8", "surrogatepass")
        root = parse(grammar, source, key=str(real))
        return None if root is None else {name: signature(node, source) for name, node in top_level(root).items()}


def imported(query: Query, roots: Sequence[Path], definitions: Definitions, budget: int) -> list[Snippet]:
    grammar = GRAMMARS.get(query.language)
    here = Path(path_of(query.uri))
    if grammar is None or not here.is_absolute():
        return []
    source = _head(query.lines, MAX_SOURCE)
    root = parse(grammar, source, key=str(here))
    if root is None:
        return []
    snippets: list[Snippet] = []
    for path, names in list(_imports(grammar, root, source, here, roots))[:MAX_FILES]:
        found = definitions.of(path, roots)
        if "*" in found:  # a C header: its declarations
            wanted = [found["*"]]
        else:  # "**": a whole CommonJS module
            wanted = list(dict.fromkeys(found.values() if "**" in names else (found[n] for n in names if n in found)))
        if wanted:
            snippets.append(Snippet(_shown(path, roots), "\n\n".join(wanted) + "\n", "imports"))
    return fit(snippets, budget)


def _head(lines: Sequence[str], limit: int) -> bytes:
    """The document's first ``limit`` bytes, joining no more lines than that needs."""
    out: list[bytes] = []
    size = 0
    for line in lines:
        if size >= limit:
            break
        out.append(line.encode("utf-8", "surrogatepass"))
        size += len(out[-1])
    return b"".join(out)[:limit]


def _imports(grammar: str, root: Any, source: bytes, here: Path, roots: Sequence[Path]) -> Iterator[Import]:
    for node in root.named_children:
        found: Import | None = None
        if node.type == "import_from_statement" and grammar == "python":
            found = _python_import(node, source, here, roots)
        elif node.type == "import_statement" and grammar != "python":
            spec = node.child_by_field_name("source")
            path = _relative(text(spec, source).strip("'\""), here, _JS_SUFFIXES) if spec is not None else None
            found = (path, _js_names(node, source)) if path is not None else None
        elif node.type in ("lexical_declaration", "variable_declaration") and grammar != "python":
            found = _require(node, source, here)
        elif node.type == "preproc_include" and (inc := node.child_by_field_name("path")) is not None:
            path = _relative(text(inc, source).strip('"'), here, ("",)) if inc.type == "string_literal" else None
            found = (path, ["*"]) if path is not None else None
        if found is not None:
            yield found


def _python_import(node: Any, source: bytes, here: Path, roots: Sequence[Path]) -> Import | None:
    module = node.child_by_field_name("module_name")
    path = _python_module(text(module, source), here, roots) if module is not None else None
    names = [text(n.child_by_field_name("name") or n, source) for n in node.children_by_field_name("name")]
    return (path, names) if path is not None else None


def _require(node: Any, source: bytes, here: Path) -> Import | None:
    """CommonJS: ``const {a, b} = require("./m")`` takes a and b; ``const m = require("./m")`` all."""
    for decl in node.named_children:
        value, name = decl.child_by_field_name("value"), decl.child_by_field_name("name")
        func = value.child_by_field_name("function") if value is not None and value.type == "call_expression" else None
        args = value.child_by_field_name("arguments") if func is not None and text(func, source) == "require" else None
        spec = args.named_children[0] if args is not None and args.named_children else None
        if spec is None or spec.type != "string" or name is None:
            continue
        path = _relative(text(spec, source).strip("'\"`"), here, _JS_SUFFIXES)
        if name.type != "object_pattern":
            return (path, ["**"]) if path is not None else None
        names = [text(p.child_by_field_name("key") or p, source) for p in name.named_children
                 if p.type in ("shorthand_property_identifier_pattern", "pair_pattern")]
        return (path, names) if path is not None else None
    return None


def _js_names(node: Any, source: bytes) -> list[str]:
    clause = next((c for c in node.named_children if c.type == "import_clause"), None)
    names: list[str] = []
    for child in clause.named_children if clause is not None else []:
        if child.type == "identifier":
            names.append("default")
        elif child.type == "named_imports":
            names += [text(s.child_by_field_name("name"), source) for s in child.named_children
                      if s.type == "import_specifier"]
    return names


def _python_module(dotted: str, here: Path, roots: Sequence[Path]) -> Path | None:
    dots = len(dotted) - len(dotted.lstrip("."))
    parts = [p for p in dotted.lstrip(".").split(".") if p]
    if dots:
        bases = [here.parents[dots - 1]] if dots <= len(here.parents) else []
    else:
        bases = [*roots, *(r / "src" for r in roots), here.parent]
    for base in bases:
        for candidate in (base.joinpath(*parts).with_suffix(".py") if parts else None,
                          base.joinpath(*parts, "__init__.py")):
            if candidate is not None and candidate.is_file():
                return candidate
    return None


def _relative(spec: str, here: Path, suffixes: Sequence[str]) -> Path | None:
    if not spec.startswith(".") and suffixes != ("",):
        return None  # a package from node_modules, not the workspace
    for suffix in suffixes:
        candidate = Path(os.path.normpath(here.parent / (spec + suffix)))
        if candidate.is_file():
            return candidate
    return None


def _shown(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        if root in path.parents:
            return str(path.relative_to(root))
    return path.name
