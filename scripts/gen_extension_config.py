#!/usr/bin/env python3
"""Write extension/package.json's ``contributes.configuration`` from the configuration model.

Every setting a user may set shows in VS Code's Settings UI with the server's default, description,
choices and range (pydantic's ge/gt/le/lt and lengths), so the two cannot drift (issue 23,
point 11; tests/unit/test_extension_config.py fails when they do). Settings only a user may set
(``settings_trust.USER_ONLY``: where code and keys go, what runs) are ``machine``-scoped: VS Code
then takes them from user settings only, never a folder's .vscode/settings.json, and does not
sync them to other machines (their paths and endpoints are this machine's).

Only the ``configuration`` value is rewritten, in place: the rest of the file (commands and menus
others edit) is kept byte for byte, and the result is checked to parse with everything else equal.

It also writes extension/src/generated/settingsKeys.ts, the keys extension/src/settings.ts forwards
as ``initializationOptions``: the user-only keys and the privacy lists from settings_trust.py, and
the tunable keys the extension sends at start (issue 21, point 7: no third hand-kept list).
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

import annotated_types as at  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from pydantic.alias_generators import to_camel  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402

from vllm_companion.config import Config  # noqa: E402
from vllm_companion.settings_trust import (  # noqa: E402
    CEILINGS,
    FLOORS,
    OFF_ONLY,
    PRIVACY_LISTS,
    USER_ONLY,
    WORKSPACE_GLOB_STARS,
    WORKSPACE_ITEM_MAX,
    WORKSPACE_LIST_MAX,
    WORKSPACE_TUNABLE,
    user_only_keys,
)

MANIFEST = ROOT / "extension" / "package.json"
KEYS_TS = ROOT / "extension" / "src" / "generated" / "settingsKeys.ts"
# Tunable settings the extension also sends at start, so the first requests already obey them (the
# server asks workspace/configuration for the rest once it is up). Each must be WORKSPACE_TUNABLE.
FORWARDED_TUNABLE = ("completion.enabled", "completion.disabledLanguages", "completion.debounceMs",
                     "completion.maxTokens", "chat.maxTokens", "chat.excludeGlobs")
PREFIX = "vllmCompanion."
# The extension's own settings: how VS Code starts the server (the server never sees them).
EXTENSION_ONLY: dict[str, dict[str, Any]] = {
    "serverCommand": {
        "type": "array", "scope": "machine", "items": {"type": "string"}, "default": [],
        "description": "Command that starts the language server, e.g. [\"/path/.venv/bin/vllm-companion\", "
        "\"lsp\"]. Empty: the pythonPath setting, the Python extension's interpreter, then vllm-companion on PATH.",
    },
    "pythonPath": {
        "type": "string", "scope": "machine", "default": "",
        "description": "Python interpreter that has vllm-companion installed (runs `python -m vllm_companion lsp`).",
    },
}
# Secrets stay out of settings.json: the endpoint's key is in VS Code's secret storage ("Set API
# Key"), the engine's comes from VLLM_COMPANION_ENGINE_KEY or is random per engine.
SECRETS = ("backend.apiKey", "engine.apiKey")
# Where VS Code's default differs from the server's, on purpose (docs/configuration.md says so).
VSCODE_DEFAULTS: dict[str, Any] = {"backend.launch": True}
NOTES = {
    "backend.launch": "VS Code: on unless you turn it off (the extension starts the local engine); "
    "the server's own default, for other editors, is off.",
    "backend.endpoint": "Its API key is kept in VS Code's secret storage: run \"vLLM Companion: Set API Key\".",
}
_BASES = {bool: "boolean", int: "integer", float: "number", str: "string"}
_BOUNDS = {at.Ge: ("minimum", "ge"), at.Le: ("maximum", "le"), at.Gt: ("exclusiveMinimum", "gt"),
           at.Lt: ("exclusiveMaximum", "lt")}


def _split_none(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` as (X, True); anything else as (it, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(annotation)):
            return args[0], True
    return annotation, False


def _shape(annotation: Any) -> dict[str, Any]:
    """JSON schema of a (non-optional) annotation: base types, Literal, list[...], dict[str, str]."""
    origin = get_origin(annotation)
    if origin is Literal:
        values = list(get_args(annotation))
        return {"type": _BASES[type(values[0])], "enum": values}
    if origin is list:
        return {"type": "array", "items": _shape(get_args(annotation)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _shape(get_args(annotation)[1])}
    if hasattr(annotation, "__metadata__"):  # Annotated[str, StringConstraints(...)]
        return _shape(get_args(annotation)[0])
    return {"type": _BASES[annotation]}


def _constraints(field: FieldInfo, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in field.metadata:
        for cls, (name, attr) in _BOUNDS.items():
            if isinstance(item, cls):
                out[name] = getattr(item, attr)
        if isinstance(item, at.MinLen) and item.min_length:
            out["minItems" if kind == "array" else "minLength"] = item.min_length
        if isinstance(item, at.MaxLen):
            out["maxItems" if kind == "array" else "maxLength"] = item.max_length
    return out


def setting(section: str, name: str, field: FieldInfo) -> dict[str, Any]:
    """One setting's entry: type, scope, items, enum, range, default, description."""
    key = f"{section}.{to_camel(name)}"
    inner, nullable = _split_none(field.annotation)
    shape = _shape(inner)
    out: dict[str, Any] = {"type": [shape["type"], "null"] if nullable else shape["type"]}
    if to_camel(name) in USER_ONLY.get(section, ()):
        out["scope"] = "machine"
    out |= {k: v for k, v in shape.items() if k != "type"}
    if nullable and "enum" in out:
        out["enum"] = [*out["enum"], None]
    out |= _constraints(field, shape["type"])
    out["default"] = VSCODE_DEFAULTS.get(key, field.get_default(call_default_factory=True))
    out["description"] = " ".join(filter(None, [field.description or "", NOTES.get(key, "")]))
    return out


def configuration() -> dict[str, Any]:
    properties = {PREFIX + key: value for key, value in EXTENSION_ONLY.items()}
    for section, part in Config.model_fields.items():
        model = part.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items():
            if f"{section}.{to_camel(name)}" not in SECRETS:
                properties[f"{PREFIX}{section}.{to_camel(name)}"] = setting(section, name, field)
    return {"title": "vLLM Companion", "properties": properties}


def compact(value: Any) -> str:
    """The manifest's style: one setting per line, ``{ "k": v }`` objects, ``[a, b]`` lists."""
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}: {compact(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def render(indent: str) -> str:
    """The ``configuration`` value as the manifest writes it, its key at ``indent``."""
    config = configuration()
    rows = [f"{indent}    {json.dumps(k)}: {compact(v)}" for k, v in config["properties"].items()]
    return "\n".join([
        "{", f"{indent}  \"title\": {json.dumps(config['title'])},", f"{indent}  \"properties\": {{",
        ",\n".join(rows), f"{indent}  }}", f"{indent}}}",
    ])


def rewrite(text: str) -> str:
    """``text`` (the manifest) with only its ``contributes.configuration`` value replaced."""
    match = re.search(r'^([ \t]*)"configuration"[ \t]*:[ \t]*', text, re.M)
    assert match, "no \"configuration\" key in the manifest"
    _, end = json.JSONDecoder().raw_decode(text, match.end())
    out = text[: match.end()] + render(match.group(1)) + text[end:]
    before, after = json.loads(text), json.loads(out)
    assert after["contributes"].pop("configuration") == configuration()
    before["contributes"].pop("configuration")
    assert after == before, "the rewrite touched more than contributes.configuration"
    return out


def _ts_list(name: str, doc: str, keys: list[str]) -> str:
    rows = ",\n".join(f"  {json.dumps(k)}" for k in keys)
    return f"/** {doc} */\nexport const {name}: readonly string[] = [\n{rows},\n];\n"


def settings_keys() -> str:
    """extension/src/generated/settingsKeys.ts: the key lists settings.ts forwards."""
    tunable = {f"{section}.{key}" for section, keys in WORKSPACE_TUNABLE.items() for key in keys}
    assert set(FORWARDED_TUNABLE) <= tunable, "a forwarded tunable key is not WORKSPACE_TUNABLE"
    # The server holds a workspace's value of these to the user's own, which it knows only from
    # initializationOptions: the extension forwards the user's value of each, never a folder's.
    bounded = [f"{section}.{key}" for section, key in (*CEILINGS, *FLOORS, *OFF_ONLY)]
    forwarded = [*FORWARDED_TUNABLE, *(key for key in bounded if key not in FORWARDED_TUNABLE)]
    limits = (f"export const WORKSPACE_LIST_MAX = {WORKSPACE_LIST_MAX};\nexport const WORKSPACE_ITEM_MAX = "
              f"{WORKSPACE_ITEM_MAX};\nexport const WORKSPACE_GLOB_STARS = {WORKSPACE_GLOB_STARS};\n")
    return "\n".join([
        "// Generated by scripts/gen_extension_config.py from server/vllm_companion/settings_trust.py:",
        "// do not edit (tests/unit/test_extension_config.py fails when it is stale).\n",
        _ts_list("USER_ONLY", "Settings only the user's own settings set (settings_trust.USER_ONLY).",
                 user_only_keys()),
        _ts_list("PRIVACY_LISTS", "Lists of what is never sent: a folder adds to the user's, never takes from it.",
                 [f"{section}.{key}" for section, key in PRIVACY_LISTS]),
        _ts_list("FORWARDED_TUNABLE", "Settings a folder may tune that the extension also sends at start.",
                 forwarded),
        _ts_list("BOUNDED_TUNABLE", "Tunable settings a folder may only lower (or raise, or switch off) from the "
                 "user's own value (CEILINGS, FLOORS, OFF_ONLY): forwarded from the user's settings only.", bounded),
        "/** What a folder may add to a privacy list (settings_trust.py, WORKSPACE_*). */",
        limits,
    ])


if __name__ == "__main__":
    MANIFEST.write_text(rewrite(MANIFEST.read_text()))
    print(f"wrote {MANIFEST.relative_to(ROOT)} contributes.configuration")
    KEYS_TS.parent.mkdir(parents=True, exist_ok=True)
    KEYS_TS.write_text(settings_keys())
    print(f"wrote {KEYS_TS.relative_to(ROOT)}")
