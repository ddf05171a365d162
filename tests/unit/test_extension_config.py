"""VS Code's Settings UI is generated from the configuration model (scripts/gen_extension_config.py):
extension/package.json must say what server/vllm_companion/config.py says (issue 23, point 11)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from vllm_companion.config import Config
from vllm_companion.settings_trust import user_only_keys

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "extension" / "package.json"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_extension_config", ROOT / "scripts" / "gen_extension_config.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def properties() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text())["contributes"]["configuration"]["properties"]  # type: ignore[no-any-return]


def test_package_json_settings_are_generated_from_config_py() -> None:
    manifest = json.loads(MANIFEST.read_text())["contributes"]["configuration"]
    assert manifest == generator().configuration(), "run scripts/gen_extension_config.py"


def test_every_setting_but_the_secrets_is_in_the_settings_ui_with_the_servers_default() -> None:
    props = properties()
    defaults = Config().model_dump(by_alias=True)
    for section, values in defaults.items():
        for key, value in values.items():
            name = f"vllmCompanion.{section}.{key}"
            if f"{section}.{key}" in ("backend.apiKey", "engine.apiKey"):
                assert name not in props  # secret storage and the environment, never settings.json
            elif name != "vllmCompanion.backend.launch":  # VS Code's own default (docs/configuration.md)
                assert props[name]["default"] == value, name
    assert props["vllmCompanion.backend.launch"]["default"] is True
    assert "server's own default" in props["vllmCompanion.backend.launch"]["description"]


def test_ranges_and_choices_come_from_the_validators() -> None:
    props = properties()
    debounce = props["vllmCompanion.completion.debounceMs"]
    assert (debounce["type"], debounce["minimum"], debounce["maximum"]) == ("integer", 0, 5000)
    assert props["vllmCompanion.completion.topP"]["exclusiveMinimum"] == 0
    assert props["vllmCompanion.engine.gpuMemoryUtilization"]["type"] == ["number", "null"]
    assert props["vllmCompanion.engine.kind"]["enum"] == ["vllm", "llamacpp"]
    sources = props["vllmCompanion.completion.contextSources"]["items"]["enum"]
    assert sources == ["imports", "open-files", "recent-edits"]


def test_only_user_settings_may_set_the_user_only_keys() -> None:
    """``machine`` scope: VS Code takes these from user settings, never a folder's."""
    props = properties()
    shown = {key for key in user_only_keys() if f"vllmCompanion.{key}" in props}
    assert {k for k, v in props.items() if v.get("scope") == "machine"} == (
        {f"vllmCompanion.{k}" for k in shown} | {"vllmCompanion.serverCommand", "vllmCompanion.pythonPath"})


def test_the_rewrite_keeps_the_rest_of_the_manifest_byte_for_byte() -> None:
    """Commands and menus are edited by hand (and by others): only the configuration value moves."""
    gen = generator()
    text = MANIFEST.read_text()
    stale = text.replace('"title": "vLLM Companion",', '"title": "stale",', 1)
    fixed = gen.rewrite(stale)
    assert fixed == text
    head = text[: text.index('"configuration"')]
    tail = text[text.index('"commands"'):]
    assert fixed.startswith(head) and fixed.endswith(tail)


def test_the_keys_the_extension_forwards_are_generated_from_settings_trust() -> None:
    """extension/src/settings.ts reads its key lists from generated/settingsKeys.ts, never its own copy."""
    gen = generator()
    assert gen.KEYS_TS.read_text() == gen.settings_keys(), "run scripts/gen_extension_config.py"
    source = (ROOT / "extension" / "src" / "settings.ts").read_text()
    assert 'from "./generated/settingsKeys"' in source
    assert "backend.endpoint" not in source.split("*/")[-1]  # no hand-kept list after the comments

