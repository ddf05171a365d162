"""One fully defaulted configuration model, documented field by field in docs/configuration.md.

Sources, later wins: defaults < environment variables < ``initializationOptions`` <
``workspace/configuration`` (section ``vllmCompanion``) < ``workspace/didChangeConfiguration``.
The last two carry a repository's settings, so they pass through ``from_workspace`` first
(``USER_ONLY``, ``PRIVACY_LISTS``; docs/security.md). A bad value never fails ``initialize``: the
offending field is dropped, its default used, and the problem reported once (``load_config``
returns the messages). The sections' models (fields, defaults, bounds) are in config_sections.py;
``from .config import CompletionSettings`` and the like keep working (``__all__``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError
from pydantic.alias_generators import to_camel

from . import paths
from .config_sections import (
    BackendSettings,
    ChatSettings,
    CompletionSettings,
    EngineSettings,
    LogSettings,
    NextEditSettings,
    Section,
)

__all__ = [
    "ENV_VARS", "BackendSettings", "ChatSettings", "CompletionSettings", "Config", "EngineSettings", "LogSettings",
    "NextEditSettings", "canonical", "deep_merge", "env_overrides", "load_config", "redact_url",
]

ENV_VARS = {
    "VLLM_COMPANION_ENDPOINT": ("backend", "endpoint"),
    "VLLM_COMPANION_MODEL": ("backend", "model"),
    "VLLM_COMPANION_API_KEY": ("backend", "apiKey"),
    "VLLM_COMPANION_ENGINE_KEY": ("engine", "apiKey"),
    "VLLM_COMPANION_ENGINE_COMMAND": ("engine", "command"),  # a JSON list
}

MAX_PROBLEMS = 8  # setting problems reported at once (100,000 bad list items made an 11 MB message)


def redact_url(url: str) -> str:
    """``url`` fit for a log, a status or a message: no ``user:password@``, no query, no fragment
    (a gateway's key may ride in either). Every place that shows an endpoint goes through here."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<not a URL>"
    if not (parts.scheme and parts.netloc):
        return "<not a URL>"
    netloc = ("***@" if "@" in parts.netloc else "") + (f"[{host}]" if ":" in host else host)
    netloc += f":{port}" if port is not None else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


class Config(Section):
    backend: BackendSettings = Field(default_factory=BackendSettings)
    completion: CompletionSettings = Field(default_factory=CompletionSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    # Spelt as the setting: the settings tools (settings_trust.py, scripts/gen_*) key sections by field name.
    nextEdit: NextEditSettings = Field(default_factory=NextEditSettings)
    log: LogSettings = Field(default_factory=LogSettings)


def canonical(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Sections and their keys spelt as the model's aliases (``api_key`` is ``apiKey``), so that
    neither the user-only check nor a merge can be dodged by the other spelling."""
    out: dict[str, Any] = {}
    for section, part in settings.items():
        name = to_camel(str(section))
        out[name] = {to_camel(str(k)): v for k, v in part.items()} if isinstance(part, Mapping) else part
    return out


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested dicts, values in ``override`` win; non-dict overrides replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = paths.variables(ENV_VARS) if environ is None else environ
    out: dict[str, Any] = {}
    for var, (section, key) in ENV_VARS.items():
        if environ.get(var):
            value: Any = environ[var]
            if var.endswith("_COMMAND"):
                try:
                    value = json.loads(value)
                except ValueError:
                    value = value.split()
            out.setdefault(section, {})[key] = value
    return out


def _drop(raw: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Remove the value at ``loc`` (a pydantic error location) from ``raw``; True if removed."""
    node: Any = raw
    for part in loc[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    if isinstance(node, dict) and loc and loc[-1] in node:
        del node[loc[-1]]
        return True
    if isinstance(node, list) and loc and isinstance(loc[-1], int) and loc[-1] < len(node):
        del node[loc[-1]]
        return True
    return False


def load_config(*sources: Mapping[str, Any] | None) -> tuple[Config, list[str]]:
    """Validate merged sources; bad fields fall back to defaults and are described in the messages."""
    raw: dict[str, Any] = {}
    for src in sources:
        if isinstance(src, Mapping):
            raw = deep_merge(raw, canonical(src))
    problems: list[str] = []
    for _ in range(50):
        try:
            return Config.model_validate(raw), _summary(problems)
        except ValidationError as exc:
            errors = exc.errors()
            problems += [f"setting {'.'.join(map(str, err['loc']))}: {err['msg']} (default used)" for err in errors]
            removed = False
            for err in reversed(errors):  # last first: deleting item 1 before item 2 would delete item 3
                loc = tuple(err["loc"])
                removed |= _drop(raw, loc) or (len(loc) > 1 and _drop(raw, loc[:-1]))
            if not removed:
                break
    return Config(), _summary(["settings ignored: could not be repaired", *problems])


def _summary(problems: list[str]) -> list[str]:
    """At most ``MAX_PROBLEMS`` messages: they go to the user, in one message."""
    extra = len(problems) - MAX_PROBLEMS
    return problems if extra <= 0 else [*problems[:MAX_PROBLEMS], f"and {extra} more setting problems"]
