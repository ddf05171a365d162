"""``vllm-companion editor install vscode|nvim|emacs``: the editor side in one step (issue 23).

VS Code: takes the ``.vsix`` given (``--vsix``), or the one already built in a clone's
``extension/`` when it is newer than the sources, or builds it (``npm install``, ``npm run
package``: Node >= 22, which ``@vscode/vsce`` 4.1.0 declares in ``extension/package-lock.json``);
installs it with the first of ``code``, ``codium``, ``code-server`` on PATH (or
``--editor-command``); then records this installation's server command in
``$XDG_CONFIG_HOME/vllm-companion/installation.json`` (0600 in a 0700 folder of the user's), which
the extension reads at first launch (extension/src/discovery.ts) so no setting is needed.

Neovim and Emacs: prints the config lines for this installation (the plugin folder that ships in
the package, the absolute server command), or writes them with ``--write PATH`` (never over an
existing file without ``--force``).

Exit 2: something to fix first (no editor, no Node 22, a file in the way), said in one line.
Exit 1: a step that ran and failed (the build, the editor's install); its output is on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from . import __version__, paths
from .paths import UnsafeDirectory, private_dir, write_private

# @vscode/vsce 4.1.0 (extension/package.json) declares engines.node ">= 22"
# (tests/e2e/test_editor_install.py checks the lockfile still says so).
MIN_NODE = (22, 0)
VSCODE_EDITORS = ("code", "codium", "code-server")
RECORD_FORMAT = 1
BUILD_TIMEOUT_S = 900.0  # npm install on a cold cache, then esbuild and vsce
INSTALL_TIMEOUT_S = 300.0
VERSION_TIMEOUT_S = 10.0
EXTENSION = Path(__file__).resolve().parents[2] / "extension"  # present in a clone only
PLUGINS = Path(__file__).resolve().parent / "editors"


class EditorError(Exception):
    """A step that cannot go on: the message says what to do; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _endpoint(text: str) -> str:
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an http(s) URL, e.g. http://127.0.0.1:8000/v1")
    return text


def add_commands(sub: Any) -> None:
    editor = sub.add_parser("editor", help="install the editor side: VS Code extension, Neovim/Emacs config")
    actions = editor.add_subparsers(dest="editor_action", required=True)
    inst = actions.add_parser("install", help="install (VS Code) or print the config lines (Neovim, Emacs)")
    inst.add_argument("editor", choices=["vscode", "nvim", "emacs"])
    inst.add_argument("--vsix", type=Path, help="vscode: install this .vsix instead of building one")
    inst.add_argument("--editor-command", metavar="PATH",
                      help=f"vscode: the editor's CLI (default: the first of {', '.join(VSCODE_EDITORS)} on PATH)")
    inst.add_argument("--extensions-dir", metavar="DIR", help="vscode: passed to the editor's CLI")
    inst.add_argument("--user-data-dir", metavar="DIR", help="vscode: passed to the editor's CLI")
    inst.add_argument("--endpoint", type=_endpoint,
                      help="nvim/emacs: attach to this server instead of starting the local engine")
    inst.add_argument("--write", metavar="PATH", type=Path, help="nvim/emacs: write the lines to this file")
    inst.add_argument("--force", action="store_true", help="with --write: replace an existing file")


def run(args: argparse.Namespace) -> int:
    try:
        if args.editor == "vscode":
            return install_vscode(args)
        text = config_lines(args.editor, args.endpoint)
        if args.write is None:
            sys.stdout.write(text)
        else:
            write_config(args.write, text, args.force)
            print(f"wrote the {args.editor} config for this installation to {args.write}")
        return 0
    except EditorError as exc:
        print(f"vllm-companion: {exc}", file=sys.stderr)
        return exc.code


def server_command() -> list[str]:
    """This installation's server: its interpreter by absolute path, never resolved (a virtualenv's
    ``bin/python`` is a link whose location is what selects the environment). ``-P`` (Python 3.11+,
    which pyproject requires): editors start the server in the project folder, and ``-m`` would
    otherwise put that folder first on sys.path, so a repository's own ``vllm_companion/`` would run
    (tests/adversarial/test_editor_install.py)."""
    return [os.path.abspath(sys.executable), "-P", "-m", "vllm_companion", "lsp"]


def installation_path() -> Path:
    """``$XDG_CONFIG_HOME/vllm-companion/installation.json`` (``~/.config`` when unset or relative,
    as the XDG base directory spec says); extension/src/discovery.ts reads the same path."""
    return paths.config_dir() / "installation.json"


def _lua(text: str) -> str:
    return '"' + "".join(f"\\{ord(c):03d}" if ord(c) < 32 or c in '"\\' else c for c in text) + '"'


def _elisp(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_lines(editor: str, endpoint: str | None) -> str:
    """The lines docs/editors/neovim.md and emacs.md show, with this installation's absolute paths."""
    head = f"vLLM Companion {__version__}, this installation (from `vllm-companion editor install {editor}`)"
    cmd = server_command()
    if editor == "nvim":
        backend = f"endpoint = {_lua(endpoint)}" if endpoint else "launch = true"
        return (f"-- {head}\n"
                f"vim.opt.runtimepath:prepend({_lua(str(PLUGINS / 'nvim'))})\n"
                "vim.cmd.runtime('plugin/vllm_companion.lua')  -- its commands, wherever these lines are run\n"
                "require('vllm_companion').setup({\n"
                f"  cmd = {{ {', '.join(_lua(c) for c in cmd)} }},\n"
                f"  init_options = {{ backend = {{ {backend} }} }},\n"
                "})\n")
    backend = f":endpoint {_elisp(endpoint)}" if endpoint else ":launch t"
    return (f";; {head}\n"
            f"(add-to-list 'load-path {_elisp(str(PLUGINS / 'emacs'))})\n"
            "(require 'vllm-companion)\n"
            f"(setq vllm-companion-command '({' '.join(_elisp(c) for c in cmd)}))\n"
            f"(setq vllm-companion-init-options '(:backend ({backend})))\n"
            "(vllm-companion-register-server)\n"
            "(add-hook 'python-mode-hook #'eglot-ensure)\n")


def write_config(path: Path, text: str, force: bool) -> None:
    """Create ``path``; an existing file (or link) is replaced only with ``force``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise EditorError(f"{path} exists: pass --force to replace it") from None
    except OSError as exc:
        raise EditorError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def install_vscode(args: argparse.Namespace) -> int:
    editor = find_editor(args.editor_command)
    vsix = given_vsix(args.vsix) if args.vsix else packaged_vsix()
    dirs = [arg for flag, value in (("--extensions-dir", args.extensions_dir), ("--user-data-dir", args.user_data_dir))
            if value for arg in (flag, os.path.abspath(value))]
    command = [editor, *dirs, "--install-extension", str(vsix), "--force"]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EditorError(f"{editor} --install-extension did not finish: {exc}", 1) from None
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise EditorError(f"{editor} --install-extension {vsix} failed (exit {done.returncode})", 1)
    record = record_installation()
    print(f"installed {vsix.name} with {editor}; the extension starts `{' '.join(server_command())}`"
          f" (recorded in {record}; vllmCompanion.serverCommand, if set, still wins)")
    return 0


def find_editor(given: str | None) -> str:
    if given:
        path = shutil.which(given)
        if path is None:
            raise EditorError(f"--editor-command {given}: not an executable file")
        return os.path.abspath(path)
    for name in VSCODE_EDITORS:
        if path := shutil.which(name):
            return path
    raise EditorError(f"no VS Code found: none of {', '.join(VSCODE_EDITORS)} is on PATH;"
                      " pass --editor-command PATH (the editor's command-line tool)")


def given_vsix(path: Path) -> Path:
    if not path.is_file() or path.suffix != ".vsix":
        raise EditorError(f"--vsix {path}: not a .vsix file")
    return path.resolve()


def packaged_vsix() -> Path:
    """The clone's ``extension/vllm-companion.vsix`` when newer than every source, else a new build."""
    if not (EXTENSION / "package.json").is_file():
        raise EditorError("no .vsix to install: pass --vsix PATH (CI keeps dist/vllm-companion.vsix as an artifact),"
                          " or run this from a clone of the repository, which builds it (Node >= 22)")
    built = EXTENSION / "vllm-companion.vsix"
    sources = [EXTENSION / n for n in ("package.json", "package-lock.json", "build.mjs")]
    sources += [p for p in (EXTENSION / "src").rglob("*") if p.is_file()]
    if built.is_file() and built.stat().st_mtime >= max(p.stat().st_mtime for p in sources if p.exists()):
        return built
    build_vsix()
    return built


def node_version(node: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.match(r"v(\d+)\.(\d+)", out.strip())
    return (int(found[1]), int(found[2])) if found else None


def build_vsix() -> None:
    """``npm install`` and ``npm run package`` in extension/ (their output goes to stderr)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    version = node_version(node) if node else None
    if npm is None or version is None or version < MIN_NODE:
        found = f"found Node {version[0]}.{version[1]} at {node}" if version else "no working `node` on PATH"
        raise EditorError(f"building the VS Code extension needs Node.js {MIN_NODE[0]} or newer with npm"
                          f" (@vscode/vsce 4.1.0 requires it; {found}). Install Node {MIN_NODE[0]}+"
                          " (the tests use Node 24), or pass --vsix PATH with a .vsix built elsewhere.")
    for step in (["install", "--no-audit", "--no-fund"], ["run", "package"]):
        try:
            done = subprocess.run([npm, *step], cwd=EXTENSION, stdin=subprocess.DEVNULL, stdout=2,
                                  timeout=BUILD_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EditorError(f"npm {' '.join(step)} in {EXTENSION} did not finish: {exc}", 1) from None
        if done.returncode != 0:
            raise EditorError(f"npm {' '.join(step)} in {EXTENSION} failed (exit {done.returncode})", 1)


def record_installation() -> Path:
    """Write the record the extension reads (format, version, server command): 0600, in a 0700
    folder of the user's; a link or a folder of someone else's at that place is refused."""
    path = installation_path()
    try:
        private_dir(path.parent)
    except (UnsafeDirectory, OSError) as exc:
        raise EditorError(f"cannot record the installation: {exc}") from None
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise EditorError(f"{path} is a link or not a plain file: refusing to write through it (remove it first)")
    record = {"format": RECORD_FORMAT, "version": __version__, "command": server_command(),
              "installedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_private(path, json.dumps(record, indent=1) + "\n")
    return path
