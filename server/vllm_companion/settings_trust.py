"""What a repository's settings may change (issue 19; docs/security.md "Who decides what").

``workspace/configuration`` answers and ``didChangeConfiguration`` carry a repository's settings:
VS Code's .vscode/settings.json, Emacs's .dir-locals.el (eglot marks
``eglot-workspace-configuration`` safe), Neovim's .nvim.lua, Helix's .helix/languages.toml. They
pass through ``from_workspace`` before ``load_config`` merges them over the user's own sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic.alias_generators import to_camel

from .config import Config, EngineSettings, canonical

# Where code and credentials go, and what runs on this machine, are the user's alone: only the
# environment and ``initializationOptions`` (the editor's own configuration) may set these. A
# ``workspace/configuration`` answer or a ``didChangeConfiguration`` carries a repository's settings
# (.vscode/settings.json, .dir-locals.el through eglot, .nvim.lua, .helix/languages.toml), so these
# keys are dropped from it (issue 19; docs/security.md). The model decides the destination too:
# behind a gateway (LiteLLM, OpenRouter) its id picks the upstream provider the user's key pays.
# Timeouts, priority and context size stay a workspace's to tune: they change how long we wait and
# how a request is scheduled, never where it goes or with which credentials.
# extension/package.json's restrictedConfigurations lists the same keys (tests/adversarial/test_settings.py).
USER_ONLY: dict[str, tuple[str, ...]] = {
    "backend": ("endpoint", "apiKey", "headers", "model", "launch"),
    "chat": ("model",),
    "completion": ("telemetry",),
    "engine": tuple(to_camel(name) for name in EngineSettings.model_fields),
    "log": ("file",),
}
# Lists of what is never sent: a workspace may add to the user's, never remove from them.
PRIVACY_LISTS = (("chat", "excludeGlobs"), ("completion", "disabledLanguages"))
WORKSPACE_LIST_MAX = 256  # items a workspace may add to one privacy list


def user_only_keys() -> list[str]:
    return [f"{section}.{key}" for section, keys in USER_ONLY.items() for key in keys]


def from_workspace(settings: Mapping[str, Any], user: Config) -> tuple[dict[str, Any], list[str]]:
    """A workspace's ``settings`` less the user-only keys, privacy lists joined to the ``user``'s.
    Also returns the user-only keys it tried to change (a value equal to the user's is no news:
    VS Code answers with the user's own settings too)."""
    mine = user.model_dump(by_alias=True)
    out: dict[str, Any] = {}
    ignored: list[str] = []
    for section, part in canonical(settings).items():
        if not isinstance(part, dict):  # would replace the user's whole section
            ignored += [section] if section in mine else []
            continue
        kept: dict[str, Any] = {}
        out[section] = kept
        for key, value in part.items():
            if key in USER_ONLY.get(section, ()):
                ignored += [f"{section}.{key}"] if value != mine[section].get(key) else []
            elif (section, key) in PRIVACY_LISTS:
                added = [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
                kept[key] = list(dict.fromkeys([*mine[section][key], *added[:WORKSPACE_LIST_MAX]]))
            else:
                kept[key] = value
    return out, ignored


def ignored_message(keys: list[str]) -> str:
    return (f"workspace settings ignored: {', '.join(keys)} (where your code and keys go is yours alone: "
            "set these in your editor's own configuration or the environment; docs/security.md)")
