"""What a repository's settings may change (issue 19; docs/security.md "Who decides what").

``workspace/configuration`` answers and ``didChangeConfiguration`` carry a repository's settings:
VS Code's .vscode/settings.json, Emacs's .dir-locals.el (eglot marks
``eglot-workspace-configuration`` safe), Neovim's .nvim.lua, Helix's .helix/languages.toml. They
pass through ``from_workspace`` before ``load_config`` merges them over the user's own sources.

The table is written the safe way round: ``WORKSPACE_TUNABLE`` lists what a repository may tune,
and every other setting, including one added later, is the user's alone (``USER_ONLY``; a new
field then fails tests/adversarial/test_settings.py until extension/package.json's
``restrictedConfigurations`` lists it too, or someone decides it is safe to tune). What a
workspace sends is bounded before any work is done on it: a 12 MB settings file of unknown keys
cost 9 s of the event loop, and 256 globs of 4,000 characters 22 s of fnmatch compilation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from .config import Config, canonical

# What a repository may tune: how long we wait, how a request is scheduled, how much context and
# how suggestions look, never where code goes, with which credentials, or what runs. The model
# decides the destination too: behind a gateway (LiteLLM, OpenRouter) its id picks the upstream
# provider the user's key pays. Telemetry and the log file write to the user's disk.
WORKSPACE_TUNABLE: dict[str, tuple[str, ...]] = {
    "backend": ("contextLength", "connectTimeoutS", "firstTokenTimeoutS", "totalTimeoutS", "healthIntervalS",
                "priority"),
    "completion": ("enabled", "debounceMs", "adaptiveDebounce", "maxTokens", "maxLines", "maxPromptTokens",
                   "temperature", "topP", "family", "timeoutMs", "cacheSize", "cacheTtlS", "disabledLanguages",
                   "contextSources", "commentedContext", "contextTokens", "contextTimeoutMs", "survivalChecksS",
                   "learn", "prefetch", "warmOnOpen", "ablate", "completionItems"),
    "chat": ("maxTokens", "temperature", "topP", "maxConcurrent", "template", "excludeGlobs", "systemPrompt"),
    "nextEdit": ("enabled", "timeoutMs", "family", "propagation", "historyEdits", "historyTokens", "maxTokens",
                 "model"),
    "log": ("level",),
}


def _aliases(section: str) -> tuple[str, ...]:
    model = Config.model_fields[section].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return tuple(to_camel(name) for name in model.model_fields)


KNOWN: dict[str, tuple[str, ...]] = {section: _aliases(section) for section in Config.model_fields}
# Only the environment and ``initializationOptions`` (the editor's own configuration) may set these.
# extension/package.json (machine scope) and extension/src/generated/settingsKeys.ts are generated
# from this table by scripts/gen_extension_config.py (tests/unit/test_extension_config.py checks it).
USER_ONLY: dict[str, tuple[str, ...]] = {
    section: tuple(key for key in keys if key not in WORKSPACE_TUNABLE.get(section, ()))
    for section, keys in KNOWN.items()
}
# What a workspace may lower, never raise (or, for the debounce, raise, never lower): each makes
# requests larger or more frequent on the user's endpoint, which costs the user on a paid gateway.
CEILINGS = (("backend", "contextLength"), ("completion", "maxPromptTokens"), ("completion", "maxTokens"),
            ("completion", "contextTokens"), ("chat", "maxTokens"), ("nextEdit", "timeoutMs"),
            ("nextEdit", "historyEdits"), ("nextEdit", "historyTokens"), ("nextEdit", "maxTokens"))
FLOORS = (("completion", "debounceMs"),)
OFF_ONLY = (("completion", "prefetch"), ("completion", "warmOnOpen"), ("nextEdit", "enabled"), ("nextEdit", "model"),
            ("nextEdit", "propagation"))
# Lists of what is never sent: a workspace may add to the user's, never remove from them.
PRIVACY_LISTS = (("chat", "excludeGlobs"), ("completion", "disabledLanguages"))
WORKSPACE_LIST_MAX = 256  # items a workspace may add to one privacy list
WORKSPACE_ITEM_MAX = 256  # characters in one added item: fnmatch compiles a glob in time growing with it
WORKSPACE_GLOB_STARS = 16  # "*" in one added glob (each is a lookahead group in fnmatch's regex)
MAX_SECTIONS = 16  # keys at the top of a workspace's settings (the model has 6 sections)
MAX_KEYS = 128  # keys in one of its sections (the largest has 23)


def user_only_keys() -> list[str]:
    return [f"{section}.{key}" for section, keys in USER_ONLY.items() for key in keys]


def from_workspace(settings: Mapping[str, Any], user: Config) -> tuple[dict[str, Any], list[str], list[str]]:
    """A workspace's ``settings`` less the user-only and unknown keys, privacy lists joined to
    the ``user``'s. Also returns the user-only keys it tried to change (a value equal to the
    user's is no news: VS Code answers with the user's own settings too), and what was refused
    for its size."""
    if len(settings) > MAX_SECTIONS:
        return {}, [], [f"workspace settings ignored: {len(settings)} sections (at most {MAX_SECTIONS})"]
    mine = user.model_dump(by_alias=True)
    out: dict[str, Any] = {}
    ignored: list[str] = []
    problems: list[str] = []
    for raw_name, part in settings.items():
        section = to_camel(str(raw_name))
        if section not in KNOWN:
            continue
        if not isinstance(part, Mapping):  # would replace the user's whole section
            ignored.append(section)
        elif len(part) > MAX_KEYS:
            problems.append(f"workspace settings ignored: {section} has {len(part)} keys (at most {MAX_KEYS})")
        else:
            kept, refused, notes = _section(section, canonical({section: part})[section], mine[section])
            out[section] = {**out.get(section, {}), **kept}
            ignored += refused
            problems += notes
    return out, ignored, problems


def _section(section: str, part: dict[str, Any], mine: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    problems: list[str] = []
    for key, value in part.items():
        if key in USER_ONLY[section]:
            # VS Code answers with declared defaults (null) too: a null changes nothing, no news
            ignored += [f"{section}.{key}"] if value is not None and value != mine.get(key) else []
        elif (section, key) in PRIVACY_LISTS:
            added, refused = _additions(value, globs=key == "excludeGlobs")
            kept[key] = list(dict.fromkeys([*mine[key], *added]))
            if refused:
                problems.append(f"workspace {section}.{key}: {refused} item(s) not added (at most {WORKSPACE_LIST_MAX} "
                                f"strings of at most {WORKSPACE_ITEM_MAX} characters and {WORKSPACE_GLOB_STARS} '*')")
        elif key in KNOWN[section]:
            kept[key] = _bounded(section, key, value, mine.get(key))
    return kept, ignored, problems


def _bounded(section: str, key: str, value: Any, mine: Any) -> Any:
    """A tunable value held to the user's own where raising it would cost the user more."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and isinstance(mine, int | float)
    if (section, key) in CEILINGS and number:
        return min(value, mine)
    if (section, key) in FLOORS and number:
        return max(value, mine)
    if (section, key) in OFF_ONLY and value is not False and value != "off":  # nextEdit.model: "off"
        return mine
    return value


def _additions(value: Any, globs: bool) -> tuple[list[str], int]:
    """The items a workspace may add to a privacy list, and how many it asked for beyond them."""
    items = value if isinstance(value, list) else [value]
    fit = [v for v in items[:WORKSPACE_LIST_MAX] if isinstance(v, str) and len(v) <= WORKSPACE_ITEM_MAX
           and not (globs and v.count("*") > WORKSPACE_GLOB_STARS)]
    return fit, len(items) - len(fit)


def ignored_message(keys: list[str]) -> str:
    return (f"workspace settings ignored: {', '.join(keys)} (where your code and keys go is yours alone: "
            "set these in your editor's own configuration or the environment; docs/security.md)")
