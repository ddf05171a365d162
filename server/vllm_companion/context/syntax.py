"""What a parse yields, computed in the parse worker process: tree-sitter nodes never leave it.

Run as a script (``python -I syntax.py``, parsing.py starts it), this module is the worker: it
reads requests (a JSON header line, then the source bytes) on stdin and answers one JSON line on
stdout, after parsing within its budget (the ``progress_callback`` cancels the parse) and
extracting what the caller wants: a module's top-level definitions as signatures
(``definitions``), or its import statements as records (``imports``). It imports nothing of the
package (only the standard library and tree-sitter), so it starts in about 60 ms.

Why a process (issue 19, point 5, and measured here): the budget is checked between parse
steps, but one step of error recovery can run for seconds with the GIL held and no check at all.
16 KB of TypeScript ``a<b,`` held the GIL for 1.2 s in one step (64 KB: 7.1 s, 4.3 GB);
32 KB of C ``(a)-(b)`` took 8.5 s and 3.5 GB, and crashed the process (SIGSEGV in
``ts_stack_pop_all``) when memory ran short. In a worker, such a parse costs its budget, then
the worker is killed; the server's event loop, memory and life are not involved. The worker's
address space is capped (``MEMORY_BYTES``); it ends when its stdin closes (the server is gone).

Definitions: what the model needs of an imported symbol is how to call it: a function's signature
and docstring, a class's header with its members' signatures, a constant's first line. Bodies are
left out, so one budget holds more symbols.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

MAX_DEF_LINES = 24
MEMORY_BYTES = 1 << 30  # the worker's address space: an ordinary 256 KB parse needs ~150 MB
CHUNK = 64 * 1024
_CLASSES = {"class_definition", "class_declaration"}
Record = tuple[str, str, list[str]]  # ("python" | "relative" | "include", module or path, names)


def text(node: Any, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def top_level(root: Any) -> dict[str, Any]:
    """Name -> definition node for what a module defines at its top level."""
    out: dict[str, Any] = {}
    for node in root.named_children:
        inner = node.child_by_field_name("declaration") or node.child_by_field_name("definition") or node
        if inner.type == "expression_statement" and inner.named_children:
            inner = inner.named_children[0]
        for name in _names(inner):
            out.setdefault(name, node)
        if node.type == "export_statement" and any(c.type == "default" for c in node.children):
            out.setdefault("default", node)
    return out


def _names(node: Any) -> list[str]:
    if node.type in ("lexical_declaration", "variable_declaration"):
        return [n.text.decode() for d in node.named_children if (n := d.child_by_field_name("name")) is not None]
    field = node.child_by_field_name("left") if node.type == "assignment" else node.child_by_field_name("name")
    return [field.text.decode()] if field is not None and field.type in ("identifier", "type_identifier") else []


def signature(node: Any, source: bytes) -> str:
    """A definition without its body: a function's header and docstring; a class's header and its
    members' headers; anything else (constants, interfaces, types) whole, clipped."""
    inner = _unwrap(node)
    body = _body(inner)
    if body is None or body.type not in ("block", "statement_block", "class_body"):
        return _clip(text(node, source))
    braces = body.type != "block"  # JavaScript/TypeScript/C: { ... }; Python: indentation
    lines = [source[node.start_byte : body.start_byte].decode("utf-8", "replace").rstrip() + (" {" if braces else "")]
    first = body.named_children[0] if body.named_children else None
    below = first is not None and first.start_point[0] > node.start_point[0]
    indent = " " * (first.start_point[1] if first is not None and below else 2 if braces else 4)
    members = body.named_children if inner.type in _CLASSES else body.named_children[:1]
    for item in members:
        if _is_doc(item):
            lines.append(indent + text(item, source))
        elif inner.type in _CLASSES:
            lines.append(indent + _header(item, source, braces))
    if inner.type not in _CLASSES:
        lines.append(indent + "...")
    lines.append("}" if braces else "")
    return _clip("\n".join(lines).rstrip("\n"))


def _header(item: Any, source: bytes, braces: bool) -> str:
    """A class member without its body: ``def m(self): ...`` or ``m(x) { ... }``."""
    body = _body(_unwrap(item))
    if body is None:
        return text(item, source).split("\n")[0]
    head = source[item.start_byte : body.start_byte].decode("utf-8", "replace").rstrip()
    return head + (" { ... }" if braces else " ...")


def _unwrap(node: Any) -> Any:
    return node.child_by_field_name("declaration") or node.child_by_field_name("definition") or node


def _body(node: Any) -> Any:
    if node.type in ("lexical_declaration", "variable_declaration") and node.named_children:
        value = node.named_children[0].child_by_field_name("value")
        return value.child_by_field_name("body") if value is not None else None
    return node.child_by_field_name("body")


def _is_doc(item: Any) -> bool:
    if item.type == "expression_statement" and item.named_children:
        item = item.named_children[0]
    return bool(item.type == "string")


def _clip(value: str) -> str:
    lines = value.split("\n")
    return "\n".join(lines[:MAX_DEF_LINES]) + ("\n..." if len(lines) > MAX_DEF_LINES else "")


# -- imports -----------------------------------------------------------------------------------------
def import_records(grammar: str, root: Any, source: bytes) -> list[Record]:
    """The top-level imports of a module, unresolved: Python ``from m import a`` (module), ES
    ``import {a} from "./m"`` and CommonJS ``require("./m")`` (spec; ``**``: the whole module),
    C ``#include "m.h"`` (path). Resolving them touches the file system: imports.py does that."""
    found: list[Record] = []
    for node in root.named_children:
        if node.type == "import_from_statement" and grammar == "python":
            module = node.child_by_field_name("module_name")
            names = [text(n.child_by_field_name("name") or n, source) for n in node.children_by_field_name("name")]
            found += [("python", text(module, source), names)] if module is not None else []
        elif node.type == "import_statement" and grammar != "python":
            spec = node.child_by_field_name("source")
            where = text(spec, source).strip("'\"") if spec is not None else None
            found += [("relative", where, _js_names(node, source))] if where is not None else []
        elif node.type in ("lexical_declaration", "variable_declaration") and grammar != "python":
            found += _require(node, source)
        elif node.type == "preproc_include" and (inc := node.child_by_field_name("path")) is not None:
            found += [("include", text(inc, source).strip('"'), ["*"])] if inc.type == "string_literal" else []
    return found


def _require(node: Any, source: bytes) -> list[Record]:
    """CommonJS: ``const {a, b} = require("./m")`` takes a and b; ``const m = require("./m")`` all."""
    for decl in node.named_children:
        value, name = decl.child_by_field_name("value"), decl.child_by_field_name("name")
        func = value.child_by_field_name("function") if value is not None and value.type == "call_expression" else None
        args = value.child_by_field_name("arguments") if func is not None and text(func, source) == "require" else None
        spec = args.named_children[0] if args is not None and args.named_children else None
        if spec is None or spec.type != "string" or name is None:
            continue
        where = text(spec, source).strip("'\"`")
        if name.type != "object_pattern":
            return [("relative", where, ["**"])]
        return [("relative", where, [text(p.child_by_field_name("key") or p, source) for p in name.named_children
                                     if p.type in ("shorthand_property_identifier_pattern", "pair_pattern")])]
    return []


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


# -- the worker ------------------------------------------------------------------------------------
def extract(grammar: str, kind: str, root: Any, source: bytes) -> Any:
    if kind == "imports":
        return import_records(grammar, root, source)
    return {name: signature(node, source) for name, node in top_level(root).items()}


def parse_within(lang: Any, source: bytes, budget_s: float) -> Any:
    """The root node, or None when the budget ran out between two parse steps."""
    from tree_sitter import Parser

    end = time.monotonic() + budget_s
    try:
        return Parser(lang).parse(lambda at, _point: source[at : at + CHUNK],
                                  progress_callback=lambda *_: time.monotonic() > end).root_node
    except ValueError:  # cancelled (py-tree-sitter: "Parsing failed")
        return None


def _confine() -> None:
    """Cap the address space. (Not ``PR_SET_PDEATHSIG``: it fires when the *thread* that started
    us ends, and parses are asked from short-lived threads. The server's exit closes our stdin.)"""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def serve() -> None:
    """Answer requests until stdin closes: ``{"grammar", "kind", "size", "budget"}`` and ``size``
    bytes in; ``{"ok": true, "result": ...}`` or ``{"ok": false}`` (over budget) out."""
    _confine()
    from tree_sitter_language_pack import get_language

    stdin, stdout = sys.stdin.buffer, sys.stdout
    stdout.write("ready\n")
    stdout.flush()
    while header := stdin.readline():
        ask = json.loads(header)
        source = stdin.read(int(ask["size"]))
        root = parse_within(get_language(ask["grammar"]), source, float(ask["budget"]))
        answer = {"ok": False} if root is None else {"ok": True, "result": extract(ask["grammar"], ask["kind"], root,
                                                                                   source)}
        stdout.write(json.dumps(answer) + "\n")
        stdout.flush()


if __name__ == "__main__":
    serve()
