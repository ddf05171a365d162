"""The Neovim plugin runs a code action's command with the document version the server put in
it (actions.py ``arguments``): after the user changed the buffer, Fix does nothing and says why
(the plugin used to rebuild the arguments as ``{uri, range, instruction}`` and drop it)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.editors.test_neovim import DOUBLE, fake, installed_config, open_file, start_nvim  # noqa: F401
from tests.fake_backend import FakeBackend, Reply

OFFERED = """
local params = {textDocument = vim.lsp.util.make_text_document_params(0),
  range = {start = {line = 0, character = 0}, ['end'] = {line = 1, character = 16}},
  context = {diagnostics = {}}}
local answers = vim.lsp.buf_request_sync(0, 'textDocument/codeAction', params, 5000)
for _, answer in pairs(answers or {}) do
  for _, action in ipairs(answer.result or {}) do
    if action.command.command == 'vllmCompanion.fix' then _G.fix_args = action.command.arguments end
  end
end
return _G.fix_args ~= nil
"""


def test_fix_offered_before_the_buffer_changed_does_nothing_and_says_so(fake: FakeBackend,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    fake.default = Reply(chunks=["```python\ndef double(x):\n    return x * 2\n```"])
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        open_file(nvim, tmp_path / "f.py", DOUBLE)
        doc = nvim.current.buffer
        assert nvim.exec_lua(OFFERED)
        doc[0:0] = ["import os"]  # the user types above the selection: lines 1-2 are other text now
        time.sleep(0.5)  # past the plugin's change debounce: the server has the new version
        nvim.exec_lua("vim.lsp.commands['vllmCompanion.fix']({arguments = _G.fix_args})")
        deadline = time.monotonic() + 10
        messages = ""
        while "changed since the action was offered" not in messages and time.monotonic() < deadline:
            time.sleep(0.1)
            messages = nvim.exec_lua("return vim.api.nvim_exec2('messages', {output = true}).output")
        assert "changed since the action was offered" in messages
        assert len(nvim.current.tabpage.windows) == 1  # no diff proposed
        assert doc[:3] == ["import os", "def double(x):", "    return x + x"]
    finally:
        nvim.close()
    asked = [r.body["messages"][-1]["content"] for r in fake.generation_requests() if "messages" in r.body]
    assert not any("Find and fix the bugs" in m for m in asked)  # (next-edit may ask after the change)
