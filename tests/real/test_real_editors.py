"""Each real editor against the real CPU engine (vLLM CPU build, SmolLM2-135M): the configs of
docs/editors/ proven end to end. The engine is started once by ``vllm-companion engine start``;
each editor's language server attaches to it (``backend.launch``, same registry)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.helpers import PYTHON, until
from tests.editors.test_emacs import run_emacs
from tests.editors.test_neovim import open_file, start_nvim
from tests.editors.test_vim import tmux, vim_session
from tests.real.test_real_engine import cpu_engine, require

CODE = "import math\n\n\ndef circle_area(radius):\n    return "


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require("vllm")
    with cpu_engine("vllm", tmp_path_factory) as (env, _):
        yield {"env": env, "options": {"backend": {"launch": True}, "engine": {"kind": "vllm", "device": "cpu"},
                                       "completion": {"debounceMs": 0}}}


def nvim_configured(options: dict[str, Any], folder: Path) -> Any:
    """Neovim with the lines ``editor install nvim`` writes, its ``init_options`` set to ``options``."""
    init = folder / "init.lua"
    subprocess.run([PYTHON, "-m", "vllm_companion", "editor", "install", "nvim", "--write", str(init)], check=True,
                   capture_output=True, timeout=60)
    line = "  init_options = { backend = { launch = true } },\n"
    text = init.read_text()
    assert line in text, text
    init.write_text(text.replace(line, f"  init_options = vim.json.decode([==[{json.dumps(options)}]==]),\n"))
    return start_nvim(init)


def test_neovim_with_the_real_engine(engine: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in engine["env"].items():
        monkeypatch.setenv(key, value)
    nvim = nvim_configured(engine["options"], tmp_path)
    try:
        open_file(nvim, tmp_path / "area.py", CODE.rstrip(" ") + "\n")
        until(lambda: "ready" in nvim.exec_lua("return require('vllm_companion').statusline()"), timeout=60)
        nvim.command("call cursor(5, 10)")
        nvim.input("a ")
        until(lambda: nvim.funcs.complete_info(["items"])["items"], timeout=60)
        nvim.input("<C-y><Esc>")
        until(lambda: len(nvim.current.buffer[4].strip()) > len("return"), timeout=10)
    finally:
        nvim.close()


def test_emacs_with_the_real_engine(engine: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "area.py"
    source.write_text(CODE)
    options = '(:backend (:launch t) :engine (:kind "vllm" :device "cpu") :completion (:debounceMs 0))'
    output = run_emacs(source, options, engine["env"], wait=60)
    buffer = output.split("BUFFER<<", 1)[-1].split(">>", 1)[0]
    assert buffer.startswith(CODE) and len(buffer) > len(CODE), output[-3000:]


def test_vim_with_the_real_engine(engine: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "area.py"
    source.write_text(CODE.rstrip(" ") + "\n")
    env = " ".join(f"{k}={v}" for k, v in engine["env"].items())
    session = vim_session(tmp_path, source, engine["options"], env=f"env {env}")
    try:
        time.sleep(5)  # the server attaches to the running engine
        tmux("send-keys", "-t", session, "5G", "A", " math")
        until(lambda: tmux("capture-pane", "-t", session, "-p").count("math") > 2, timeout=60)
        tmux("send-keys", "-t", session, "C-n")
        time.sleep(0.3)
        tmux("send-keys", "-t", session, "C-y", "Escape", ":w", "Enter")
        until(lambda: len(source.read_text().splitlines()[4]) > len("    return math"), timeout=20)
    finally:
        tmux("kill-session", "-t", session)


assert json and PYTHON  # the editor helpers carry the interpreter and the JSON options
