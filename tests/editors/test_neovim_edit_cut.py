"""The Neovim plugin on an edit whose answer the token cap cut (finish reason "length"): no diff
is proposed (accepting it replaced the selection with half the code) and the server's reason is
shown; the buffer keeps its text. :VllmCompanionEdit and Fix (the code action's command) alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.editors.helpers import until
from tests.editors.test_neovim import DOUBLE, fake, installed_config, open_file, start_nvim  # noqa: F401
from tests.fake_backend import FakeBackend, Reply

FIX = ("vim.lsp.commands['vllmCompanion.fix']({arguments = {vim.uri_from_bufnr(0),"
       " {start = {line = 0, character = 0}, ['end'] = {line = 1, character = 16}}}})")


def messages(nvim: Any) -> str:
    return str(nvim.exec_lua("return vim.api.nvim_exec2('messages', {output = true}).output"))


@pytest.mark.parametrize("run", ["edit", "fix"])
def test_a_cut_edit_shows_why_and_proposes_no_diff(fake: FakeBackend, tmp_path: Path, run: str) -> None:  # noqa: F811
    fake.default = Reply(chunks=["```python\n", "def double(x):\n", "    return (\n"], finish_reason="length")
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        open_file(nvim, tmp_path / "d.py", DOUBLE)
        doc = nvim.current.buffer
        if run == "edit":
            nvim.command("1,2VllmCompanionEdit use multiplication")
        else:
            nvim.exec_lua(FIX)
        until(lambda: "cut at" in messages(nvim))
        assert "nothing was changed: raise chat.maxTokens or select less" in messages(nvim)
        assert len(nvim.current.tabpage.windows) == 1  # no diff proposed
        assert doc[:] == DOUBLE.splitlines()
    finally:
        nvim.close()
