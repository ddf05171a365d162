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
from .definitions import GRAMMARS
from .parsing import parse
from .sources import Query, Snippet, fit
from .versions import PerVersion

MAX_SOURCE, MAX_FILES = 64_000, 8
EXTENSIONS = {".py": "python", ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript",
              ".cjs": "javascript", ".ts": "typescript", ".tsx": "tsx", ".h": "c", ".c": "c",
              ".hpp": "cpp", ".hh": "cpp", ".cpp": "cpp", ".cc": "cpp"}
_JS_SUFFIXES = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", "/index.ts", "/index.js")
Reader = Callable[[str, Sequence[Path]], "str | None"]  # uri, roots -> text, through the privacy filter
Import = tuple[Path, list[str]]  # a workspace file and the names taken from it
KEPT = 32  # documents whose import records are kept (their latest version only)
_parsed: PerVersion[list[Any]] = PerVersion(KEPT)  # uri -> (snapshot, records)


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
        found = parse(grammar, content.encode("utf-8", "surrogatepass"), "definitions", key=str(real))
        return found if isinstance(found, dict) else None


def imported(query: Query, roots: Sequence[Path], definitions: Definitions, budget: int) -> list[Snippet]:
    grammar = GRAMMARS.get(query.language)
    here = Path(path_of(query.uri))
    if grammar is None or not here.is_absolute():
        return []
    records = _records(grammar, here, query)
    if records is None:
        return []
    snippets: list[Snippet] = []
    for path, names in list(_imports(records, here, roots))[:MAX_FILES]:
        found = definitions.of(path, roots)
        if "*" in found:  # a C header: its declarations
            wanted = [found["*"]]
        else:  # "**": a whole CommonJS module
            wanted = list(dict.fromkeys(found.values() if "**" in names else (found[n] for n in names if n in found)))
        if wanted:
            snippets.append(Snippet(_shown(path, roots), "\n\n".join(wanted) + "\n", "imports"))
    return fit(snippets, budget)


def _records(grammar: str, here: Path, query: Query) -> list[Any] | None:
    """The import records of the document's head, parsed once per version: its lines are its
    snapshot (a tuple, documents.py: the same object while it is unchanged; a list may change and
    is never kept). Completions at other places of an unchanged file asked a parse worker each
    time (issue 21). A parse that gave nothing (budget, backing off, being parsed) is not kept."""
    lines = query.lines
    if (hit := _parsed.get(query.uri, lines)) is not None:
        return hit
    records = parse(grammar, _head(lines, MAX_SOURCE), "imports", key=str(here))
    if not isinstance(records, list):
        return None
    _parsed.put(query.uri, lines, records)
    return records


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


def _imports(records: list[Any], here: Path, roots: Sequence[Path]) -> Iterator[Import]:
    """The workspace files the worker's import records (syntax.import_records) name."""
    for record in records:
        kind, spec, names = record if isinstance(record, list) and len(record) == 3 else ("", "", [])
        if kind == "python":
            path = _python_module(spec, here, roots)
        elif kind in ("relative", "include"):
            path = _relative(spec, here, _JS_SUFFIXES if kind == "relative" else ("",))
        else:
            path = None
        if path is not None:
            yield path, names


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
