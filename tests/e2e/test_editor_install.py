"""``vllm-companion editor install vscode|nvim|emacs`` run as a user runs it (a subprocess): the
Neovim/Emacs lines for this installation, printed or written; the VS Code install against a fake
editor CLI on the PATH that records its argv, with a prebuilt .vsix (no npm needed), and the
installation record the extension reads (extension/src/discovery.ts)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vllm_companion import __version__, cli_editor

ROOT = Path(__file__).resolve().parents[2]
PYTHON = os.path.abspath(sys.executable)
SERVER = [PYTHON, "-P", "-m", "vllm_companion", "lsp"]


def companion(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "vllm_companion", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def fake_editor(folder: Path, name: str = "code", exit_code: int = 0) -> Path:
    """An editor CLI that writes its arguments (JSON) next to itself."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!{PYTHON}\nimport json, sys\n"
                      f"open({str(folder / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
                      f"sys.exit({exit_code})\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A scratch XDG config home, and a PATH of one folder (for the fake editors): no real editor is found."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": str(tmp_path / "bin")}


@pytest.fixture
def vsix(tmp_path: Path) -> Path:
    path = tmp_path / "vllm-companion.vsix"
    path.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: the fake editor does not open it
    return path


def test_nvim_lines_name_this_installations_plugin_and_server() -> None:
    out = companion("editor", "install", "nvim")
    assert out.returncode == 0, out.stderr
    plugin = companion("editor-path", "nvim").stdout.strip()
    assert f'vim.opt.runtimepath:prepend("{plugin}")' in out.stdout
    assert "cmd = { " + ", ".join(f'"{c}"' for c in SERVER) + " }" in out.stdout
    assert "init_options = { backend = { launch = true } }" in out.stdout


def test_emacs_lines_name_this_installation_and_attach_with_endpoint() -> None:
    out = companion("editor", "install", "emacs", "--endpoint", "http://127.0.0.1:8000/v1")
    assert out.returncode == 0, out.stderr
    plugin = companion("editor-path", "emacs").stdout.strip()
    assert f"(add-to-list 'load-path \"{plugin}\")" in out.stdout
    assert "(setq vllm-companion-command '(" + " ".join(f'"{c}"' for c in SERVER) + "))" in out.stdout
    assert "'(:backend (:endpoint \"http://127.0.0.1:8000/v1\"))" in out.stdout


def test_write_creates_the_file_and_never_overwrites_without_force(tmp_path: Path) -> None:
    target = tmp_path / "init.lua"
    first = companion("editor", "install", "nvim", "--write", str(target))
    assert first.returncode == 0, first.stderr
    assert target.read_text() == companion("editor", "install", "nvim").stdout
    target.write_text("-- mine\n")
    again = companion("editor", "install", "nvim", "--write", str(target))
    assert again.returncode == 2 and "exists: pass --force" in again.stderr
    assert target.read_text() == "-- mine\n"
    forced = companion("editor", "install", "nvim", "--write", str(target), "--force")
    assert forced.returncode == 0 and "vllm_companion" in target.read_text()


def test_vscode_install_runs_the_editor_cli_and_records_the_server(home: dict[str, str], tmp_path: Path,
                                                                   vsix: Path) -> None:
    editor = fake_editor(tmp_path / "bin", "codium")
    out = companion("editor", "install", "vscode", "--vsix", str(vsix), "--extensions-dir", str(tmp_path / "ext"),
                    "--user-data-dir", str(tmp_path / "user"), env=home)
    assert out.returncode == 0, out.stderr
    argv = json.loads((editor.parent / "argv.json").read_text())
    assert argv == ["--extensions-dir", str(tmp_path / "ext"), "--user-data-dir", str(tmp_path / "user"),
                    "--install-extension", str(vsix), "--force"]
    record = Path(home["XDG_CONFIG_HOME"]) / "vllm-companion" / "installation.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
    data = json.loads(record.read_text())
    assert data["command"] == SERVER and data["version"] == __version__ and data["format"] == 1
    # The recorded command is this installation's server (asked for its version here).
    version = subprocess.run([*data["command"][:-1], "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == __version__
    assert str(record) in out.stdout


def test_vscode_install_prefers_code_and_takes_an_explicit_editor_command(home: dict[str, str], tmp_path: Path,
                                                                          vsix: Path) -> None:
    fake_editor(tmp_path / "bin", "code-server")
    first = fake_editor(tmp_path / "bin", "code")
    assert companion("editor", "install", "vscode", "--vsix", str(vsix), env=home).returncode == 0
    assert json.loads((first.parent / "argv.json").read_text())[-2] == str(vsix)
    chosen = fake_editor(tmp_path / "elsewhere", "my-code")
    out = companion("editor", "install", "vscode", "--vsix", str(vsix), "--editor-command", str(chosen), env=home)
    assert out.returncode == 0 and (chosen.parent / "argv.json").exists()


def test_vscode_without_an_editor_says_what_to_do_and_exits_2(home: dict[str, str], vsix: Path) -> None:
    out = companion("editor", "install", "vscode", "--vsix", str(vsix), env=home)
    assert out.returncode == 2
    assert "none of code, codium, code-server is on PATH" in out.stderr and "--editor-command" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (Path(home["XDG_CONFIG_HOME"]) / "vllm-companion" / "installation.json").exists()


def test_a_failing_editor_install_exits_1_and_records_nothing(home: dict[str, str], tmp_path: Path,
                                                              vsix: Path) -> None:
    fake_editor(tmp_path / "bin", "code", exit_code=3)
    out = companion("editor", "install", "vscode", "--vsix", str(vsix), env=home)
    assert out.returncode == 1 and "failed (exit 3)" in out.stderr
    assert not (Path(home["XDG_CONFIG_HOME"]) / "vllm-companion" / "installation.json").exists()


def test_a_missing_vsix_is_named(home: dict[str, str], tmp_path: Path) -> None:
    fake_editor(tmp_path / "bin", "code")
    out = companion("editor", "install", "vscode", "--vsix", str(tmp_path / "nope.vsix"), env=home)
    assert out.returncode == 2 and "nope.vsix: not a .vsix file" in out.stderr


def test_building_needs_node_22_and_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A clone without a built .vsix, and Node 20 on the PATH: the build is refused, by name."""
    clone = tmp_path / "extension"
    (clone / "src").mkdir(parents=True)
    (clone / "package.json").write_text("{}")
    (clone / "src" / "extension.ts").write_text("")
    bin_ = tmp_path / "bin"
    fake_editor(bin_, "code")
    for name, text in (("node", "v20.20.2"), ("npm", "10.8.2")):
        (bin_ / name).write_text(f"#!/bin/sh\necho {text}\n")
        (bin_ / name).chmod(0o755)
    monkeypatch.setattr(cli_editor, "EXTENSION", clone)
    monkeypatch.setenv("PATH", str(bin_))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    from vllm_companion.cli import main

    assert main(["editor", "install", "vscode"]) == 2
    err = capsys.readouterr().err
    assert "needs Node.js 22 or newer" in err and "found Node 20.20" in err and "--vsix" in err
    assert not (bin_ / "argv.json").exists()


def test_the_node_version_named_is_the_one_vsce_declares() -> None:
    lock = json.loads((ROOT / "extension" / "package-lock.json").read_text())
    engines = lock["packages"]["node_modules/@vscode/vsce"]["engines"]["node"]
    assert re.fullmatch(r">=\s*(\d+)", engines) and int(engines.lstrip(">= ")) == cli_editor.MIN_NODE[0]
