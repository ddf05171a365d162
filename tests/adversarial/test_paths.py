"""Attacks on paths.py: the process environment's one reader, the private folders it makes
(``private_dir``), the one atomic private write (``write_private``: the engine record,
``loops.json``, the calibration, the team key, the installation record) and the one bounded read
(``read_private``). Each case is named after what it attacks; the ones that need another user's
files run as root (``os.chown``), as the other suites' do."""

from __future__ import annotations

import argparse
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session
from vllm_companion import paths
from vllm_companion.engine.record import EMPTY
from vllm_companion.engine.registry import EngineRegistry
from vllm_companion.paths import UnsafeDirectory, private_dir, read_private, write_private

ROOT_ONLY = pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
OTHER = 65534  # nobody


def _old_temp_name(target: Path) -> Path:
    """The temporary file's name before the fix: predictable from the PID and thread."""
    return target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")


# write_private: what sits at the temporary file's name, the umask, crashes, concurrent writers

@ROOT_ONLY
def test_a_temp_file_planted_by_another_user_never_becomes_the_target(tmp_path: Path) -> None:
    """Opened without O_EXCL, the planted file (theirs, 0666) was written and renamed over the
    target: the team key ended up in a file its planter owns and can read."""
    target = tmp_path / "team.key"
    planted = _old_temp_name(target)
    planted.write_text("")
    os.chown(planted, OTHER, OTHER)
    planted.chmod(0o666)
    write_private(target, "secret\n")
    info = target.lstat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (os.getuid(), 0o600)
    assert planted.read_text() == ""


def test_a_hard_link_planted_at_the_temp_name_does_not_overwrite_what_it_links_to(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "loops.json"
    os.link(victim, _old_temp_name(target))
    write_private(target, "{}")
    assert victim.read_text() == "precious" and target.read_text() == "{}"


def test_a_symlink_planted_at_the_temp_name_does_not_stop_the_write(tmp_path: Path) -> None:
    """O_NOFOLLOW refused the link (good), and so every later write failed (a lasting denial)."""
    target = tmp_path / "engine.json"
    _old_temp_name(target).symlink_to(tmp_path / "elsewhere")
    write_private(target, "{}")
    assert target.read_text() == "{}" and not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("umask", [0o277, 0o000, 0o777])
def test_the_umask_does_not_change_a_private_files_mode(tmp_path: Path, umask: int) -> None:
    """0o277 made the record 0400 and 0o777 made it 0000: unreadable to its own writer."""
    old = os.umask(umask)
    try:
        write_private(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o600


CRASH = ("import os, sys; from pathlib import Path; from vllm_companion import paths; "
         "os.replace = lambda a, b: os._exit(9); paths.write_private(Path(sys.argv[1]), 'half')")


def test_temp_files_left_by_crashed_writers_do_not_pile_up(tmp_path: Path) -> None:
    """A writer killed between its write and its rename left its temporary file for good: one
    more per crash, in a folder every editor's server writes to."""
    target = tmp_path / "loops.json"
    for _ in range(3):
        assert subprocess.run([sys.executable, "-c", CRASH, str(target)], timeout=60).returncode == 9
    left = [p for p in tmp_path.iterdir() if p.name != "loops.json"]
    assert len(left) == 3
    hour_ago = time.time() - 3600
    for p in left:
        os.utime(p, (hour_ago, hour_ago))
    busy = tmp_path / ".loops.json.inflight.tmp"  # another writer's, being written now: kept
    busy.write_text("")
    write_private(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [busy.name, "loops.json"]


def test_a_folder_at_the_target_fails_the_write_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "engine.json").mkdir()
    with pytest.raises(OSError):
        write_private(tmp_path / "engine.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine.json"]


# read_private: what may sit at the path

@ROOT_ONLY
def test_a_file_planted_by_another_user_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "loops.json"
    path.write_text('{"m": 1}')
    os.chown(path, OTHER, OTHER)
    assert read_private(path, 1024) is None


def test_a_file_others_may_write_is_not_read(tmp_path: Path) -> None:
    """Ours, but 0666: someone else may have written it while the folder was open to them."""
    path = tmp_path / "engine.json"
    path.write_text("{}")
    path.chmod(0o666)
    assert read_private(path, 1024) is None


@ROOT_ONLY
def test_a_device_at_the_path_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "engine.json"
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless
    assert read_private(path, 1024) is None


def test_a_socket_at_the_path_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "engine.json"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert read_private(path, 1024) is None


# private_dir: the folders above ours, and who owns them

@ROOT_ONLY
def test_a_folder_under_another_users_folder_is_refused(tmp_path: Path) -> None:
    """XDG_RUNTIME_DIR naming another user's folder: they may rename ours away and put theirs
    (with their engine record and team key) in its place after any check."""
    theirs = tmp_path / "run-user-1001"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, OTHER, OTHER)
    with pytest.raises(UnsafeDirectory):
        private_dir(theirs / "vllm-companion")
    assert not (theirs / "vllm-companion").exists()


def test_a_folder_under_a_world_writable_folder_without_the_sticky_bit_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeDirectory):
        private_dir(shared / "vllm-companion")
    shared.chmod(0o1777)  # like /tmp: nobody may rename what is ours
    assert private_dir(shared / "vllm-companion").is_dir()


def test_parents_made_under_an_open_umask_are_not_left_open_to_others(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with pytest.raises(UnsafeDirectory):
            private_dir(tmp_path / "a" / "b" / "vllm-companion")  # a and b made 0777
    finally:
        os.umask(old)


def test_a_symlink_at_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o755)
    (tmp_path / "vllm-companion").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafeDirectory):
        private_dir(tmp_path / "vllm-companion")
    assert stat.S_IMODE((tmp_path / "real").stat().st_mode) == 0o755  # not chmod-ed through the link


@ROOT_ONLY
async def test_a_runtime_folder_that_must_be_refused_does_not_stop_completions(
        tmp_path: Path, backend: FakeBackend) -> None:
    """The language server died at start (UnsafeDirectory from ``runtime_dir()``), though a
    completion from a configured endpoint needs no runtime folder."""
    run = tmp_path / "run"
    (run / "vllm-companion").mkdir(parents=True)
    os.chown(run / "vllm-companion", OTHER, OTHER)
    backend.default = Reply(chunks=["still_here"])
    async with session(options(backend.url), env={"XDG_RUNTIME_DIR": str(run)}) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "still_here"


# Readers that bypassed read_private

def test_a_fifo_at_the_engine_record_does_not_hang_its_reader(tmp_path: Path) -> None:
    registry = EngineRegistry(tmp_path / "run")
    os.mkfifo(registry.path)
    got: list[object] = []
    threading.Thread(target=lambda: got.append(registry.read()), daemon=True).start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == [EMPTY], "reading the engine record blocked on a FIFO"


@ROOT_ONLY
def test_an_engine_record_planted_by_another_user_is_not_trusted(tmp_path: Path) -> None:
    """Their record names their own server on a loopback port: our editors would send it code."""
    registry = EngineRegistry(tmp_path / "run")
    registry.path.write_text(json.dumps({"state": "ready", "endpoint": "http://127.0.0.1:9/v1", "apiKey": "x"}))
    os.chown(registry.path, OTHER, OTHER)
    assert registry.read() == EMPTY


@ROOT_ONLY
def test_a_team_key_planted_by_another_user_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm_companion.cli_team import team_key
    from vllm_companion.engine.registry import runtime_dir

    monkeypatch.delenv("VLLM_COMPANION_ENGINE_KEY", raising=False)
    stored = runtime_dir() / "team.key"
    stored.write_text("known-to-them\n")
    os.chown(stored, OTHER, OTHER)
    args = argparse.Namespace(host="0.0.0.0", team=True, api_key_file=None)
    key, problem = team_key(args)
    assert problem is None and key and key != "known-to-them"
    assert stored.stat().st_uid == os.getuid() and stored.read_text().strip() == key


@pytest.mark.parametrize("plant", ["fifo", "huge", "empty"])
def test_a_team_key_file_that_is_not_a_key_is_replaced(
        plant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A FIFO there hung ``engine start --team``; a huge file was read whole; an empty one made
    the key "" (the front then refused to start: no team engine at all)."""
    from vllm_companion.cli_team import team_key
    from vllm_companion.engine.registry import runtime_dir

    monkeypatch.delenv("VLLM_COMPANION_ENGINE_KEY", raising=False)
    stored = runtime_dir() / "team.key"
    if plant == "fifo":
        os.mkfifo(stored, 0o600)
    else:
        stored.write_text("k" * (64 << 20) if plant == "huge" else "")
    got: list[tuple[str | None, str | None]] = []
    args = argparse.Namespace(host="0.0.0.0", team=True, api_key_file=None)
    threading.Thread(target=lambda: got.append(team_key(args)), daemon=True).start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got, "reading team.key blocked"
    key, problem = got[0]
    assert problem is None and key and len(key) < 100


# The environment: what reaches children, odd values

def test_the_users_keys_do_not_reach_a_child_that_was_not_given_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine (and its model code), the guard and the front inherited the user's endpoint key
    and the team key, though none of them reads either."""
    monkeypatch.setenv("VLLM_COMPANION_API_KEY", "users-endpoint-key")
    monkeypatch.setenv("VLLM_COMPANION_ENGINE_KEY", "team-key")
    env = paths.child_env({"VLLM_API_KEY": "engine-own-key"})
    assert "users-endpoint-key" not in env.values() and "team-key" not in env.values()
    assert env["VLLM_API_KEY"] == "engine-own-key"
    given = paths.child_env({"VLLM_COMPANION_ENGINE_KEY": "team-key"})  # engine start's own service
    assert given["VLLM_COMPANION_ENGINE_KEY"] == "team-key" and "VLLM_COMPANION_API_KEY" not in given


def test_the_syntax_worker_gets_no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree-sitter worker parses hostile files: it inherited the whole environment."""
    from vllm_companion.context.parsing import Worker

    monkeypatch.setenv("VLLM_COMPANION_API_KEY", "users-endpoint-key")
    worker = Worker()
    try:
        environ = Path(f"/proc/{worker.proc.pid}/environ").read_bytes()
    finally:
        worker.kill()
    assert b"users-endpoint-key" not in environ and b"PATH=" in environ


@pytest.mark.parametrize("name", ["VLLM_COMPANION_CACHE", "VLLM_COMPANION_STATE"])
@pytest.mark.parametrize("value", ["cache", "./x", "../up", "~/tilde"])
def test_a_relative_folder_variable_does_not_put_our_files_in_the_workspace(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """Editors start the server in the project folder: a relative value put the engine record,
    the team key and the telemetry in the repository, where a checkout can plant its own."""
    monkeypatch.setenv(name, value)
    for folder in (paths.state_dir(), paths.cache_dir(), paths.runtime_dir()):
        assert folder.is_absolute(), folder


@pytest.mark.parametrize("value", ["1e308", "1e18", "86401"])
def test_a_tunable_too_large_to_sleep_keeps_its_default(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """``time.sleep(1e308)`` raises OverflowError: the guard died and left its engine unwatched."""
    monkeypatch.setenv("VLLM_COMPANION_GUARD_INTERVAL_S", value)
    assert paths.seconds("VLLM_COMPANION_GUARD_INTERVAL_S", 1.5) == 1.5
