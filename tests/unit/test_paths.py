"""Where this program keeps its files: one resolver (server/vllm_companion/paths.py), by the XDG
base directory spec's rules (an empty or relative ``XDG_*`` variable is ignored)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from vllm_companion import paths


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment naming none of the folders, with ``tmp_path`` as the home."""
    for name in ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "VLLM_COMPANION_STATE",
                 "VLLM_COMPANION_CACHE", "HF_HOME", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_without_variables_the_folders_are_the_xdg_defaults(bare: Path) -> None:
    assert paths.state_dir() == bare / ".local/state/vllm-companion"
    assert paths.cache_dir() == bare / ".cache/vllm-companion"
    assert paths.runtime_dir() == bare / ".cache/vllm-companion/run"
    assert paths.config_dir() == bare / ".config/vllm-companion"
    assert paths.hf_hub_cache() == bare / ".cache/huggingface/hub"


def test_an_empty_cache_variable_is_unset_not_the_whole_cache_folder(
        bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """engine/models.py took ``VLLM_COMPANION_CACHE=""`` for ``~/.cache`` itself, the registry for unset."""
    monkeypatch.setenv("VLLM_COMPANION_CACHE", "")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(bare / "run"))
    assert paths.cache_dir() == bare / ".cache/vllm-companion"
    assert paths.runtime_dir() == bare / "run/vllm-companion"


def test_relative_xdg_variables_are_ignored(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, "relative/to/the/workspace")
    assert paths.state_dir() == bare / ".local/state/vllm-companion"
    assert paths.runtime_dir() == bare / ".cache/vllm-companion/run"
    assert paths.config_dir() == bare / ".config/vllm-companion"


def test_the_cache_variable_moves_the_runtime_folder_too(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(bare / "run"))
    assert paths.runtime_dir() == bare / "run/vllm-companion"
    monkeypatch.setenv("VLLM_COMPANION_CACHE", str(bare / "mine"))
    assert (paths.cache_dir(), paths.runtime_dir()) == (bare / "mine", bare / "mine/run")


def test_the_hub_cache_follows_huggingface_hubs_rule(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(bare / "xdg"))
    assert paths.hf_hub_cache() == bare / "xdg/huggingface/hub"
    monkeypatch.setenv("HF_HOME", str(bare / "hf"))
    assert paths.hf_hub_cache() == bare / "hf/hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(bare / "hub"))
    assert paths.hf_hub_cache() == bare / "hub"


def test_a_child_environment_puts_what_is_given_first_and_drops_what_is_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEP", "1")
    monkeypatch.setenv("MARK", "old")
    monkeypatch.setenv("SECRET", "s")
    env = paths.child_env({"MARK": "new"}, drop=["SECRET"])
    assert next(iter(env)) == "MARK" and env["MARK"] == "new" and env["KEEP"] == "1" and "SECRET" not in env


@pytest.mark.parametrize("value", ["", "soon", "nan", "inf", "-1", "0"])
def test_a_tunable_that_is_not_a_positive_number_keeps_its_default(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VLLM_COMPANION_TEST_SECONDS", value)
    assert paths.seconds("VLLM_COMPANION_TEST_SECONDS", 1.5) == 1.5
    monkeypatch.setenv("VLLM_COMPANION_TEST_SECONDS", "0.25")
    assert math.isclose(paths.seconds("VLLM_COMPANION_TEST_SECONDS", 1.5), 0.25)


def test_a_private_write_is_whole_0600_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    paths.write_private(target, "{}")
    assert target.read_text() == "{}" and target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(UnicodeEncodeError):
        paths.write_private(target, "\udc80")  # the write fails half way
    assert target.read_text() == "{}" and sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_the_tests_run_in_their_own_folders(own_folders: Path) -> None:
    """tests/conftest.py: nothing a test runs resolves to the user's own folders."""
    for folder in (paths.state_dir(), paths.cache_dir(), paths.runtime_dir(), paths.config_dir()):
        assert own_folders in folder.parents, folder
