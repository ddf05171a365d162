"""Vim 9 + ALE 3.3 (Debian packages), driven in tmux like a person at the keyboard, with the
configuration from docs/editors/vim.md: ALE's completion inserts the suggestion's text (ALE
inserts an item's label unless it carries a textEdit), not a label."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.editors.helpers import PYTHON, fake_engine, need, until
from tests.fake_backend import Reply

VIMRC = """set nocompatible
let g:ale_completion_enabled = 1
let g:ale_completion_delay = 50
let g:ale_linters = {{'python': ['vllm_companion']}}
let g:ale_linters_explicit = 1
set runtimepath^=/usr/share/vim-ale
set completeopt=menu,menuone,noinsert,noselect
filetype plugin on
runtime plugin/ale.vim
call ale#linter#Define('python', {{'name': 'vllm_companion', 'lsp': 'stdio', 'executable': '{python}',
\\ 'command': '%e -m vllm_companion lsp', 'project_root': '{root}',
\\ 'initialization_options': {options}}})
"""


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


def vim_session(tmp_path: Path, source: Path, options: dict[str, Any], env: str = "") -> str:
    need("vim", "apt-get install vim-nox vim-ale tmux")
    need("tmux", "apt-get install tmux")
    session = f"vllm-companion-vim-{time.monotonic_ns()}"
    vimrc = tmp_path / "vimrc"
    viml = json.dumps(options).replace("true", "v:true").replace("false", "v:false")  # VimL literals
    vimrc.write_text(VIMRC.format(python=PYTHON, root=tmp_path, options=viml))
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", f"{env} vim -u {vimrc} -N -n {source}")
    until(lambda: source.name in tmux("capture-pane", "-t", session, "-p") or "def" in
          tmux("capture-pane", "-t", session, "-p"), timeout=10)
    time.sleep(1.5)  # ALE starts the server when the buffer is first checked
    return session


def test_ale_completion_inserts_the_suggestion_not_a_label(tmp_path: Path) -> None:
    with fake_engine() as fake:
        fake.default = Reply(chunks=[" * x"])  # after "return x": ALE asks once a word is started
        source = tmp_path / "square.py"
        source.write_text("def square(x):\n    \n")
        session = vim_session(tmp_path, source, {"backend": {"endpoint": fake.url}, "completion": {"debounceMs": 0}})
        try:
            tmux("send-keys", "-t", session, "2G", "A", "return x")
            until(lambda: "x * x" in tmux("capture-pane", "-t", session, "-p"), timeout=20)
            tmux("send-keys", "-t", session, "C-n")
            time.sleep(0.3)
            tmux("send-keys", "-t", session, "C-y", "Escape", ":w", "Enter")
            until(lambda: source.read_text() == "def square(x):\n    return x * x\n", timeout=10)
        finally:
            tmux("kill-session", "-t", session)
