"""Definitions in a source file, as signatures, found with a real parser (tree-sitter grammars
from ``tree-sitter-language-pack`` 0.13, whose wheel carries them: later versions download
grammars at first use, which a private, offline tool must not do).

What the model needs of an imported symbol is how to call it: a function's signature and
docstring, a class's header with its members' signatures, a constant's first line. Bodies are
left out, so one budget holds more symbols. Files are read through the privacy filter
(privacy.py: workspace only, no secret files, at most 256 kB), parsed within a budget
(parsing.py), and parsed results are cached by path, size and mtime, the filter checked again
on every use (imports.py).
"""

from __future__ import annotations

from typing import Any

GRAMMARS = {"python": "python", "javascript": "javascript", "javascriptreact": "javascript",
            "typescript": "typescript", "typescriptreact": "tsx", "c": "c", "cpp": "cpp"}
MAX_DEF_LINES = 24
_CLASSES = {"class_definition", "class_declaration"}


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
