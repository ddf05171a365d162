"""Files as an attack surface: which files' contents may leave, and which file is really read.

Issue 19, point 8: editor backup and autosave copies of secret files were not secret (``.env~``,
``#.env#``, ``prod.env.bak`` were attached to chat). Low item: a path swapped for a link between
the check and the open was read (313 of 37,927 racing reads). Over real stdio against the fake
engine where it matters; what the engine received is read back from its request log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, capture_partials, chat_request, inline, options, session, split_cursor
from vllm_companion.privacy import Privacy

# Backup, autosave, swap and copy names of secret files (Emacs, Vim, nano, JetBrains, patch,
# dpkg, file managers); each holds a marker that must never reach the engine.
SECRET_COPIES = [".env~", "#.env#", "prod.env.bak", ".env.save", ".env.save.1", ".id_rsa.swp", ".id_rsa.swo",
                 "id_rsa.orig", "credentials.json.orig", ".env.~1~", ".#.env", ".env.un~", "server.pem.old",
                 "prod.tfvars.tmp", ".netrc.dpkg-old", "id_ed25519 (1)", ".env copy", "#prod.env.bak#",
                 ".git-credentials___jb_old___", "kubeconfig.backup"]
ORDINARY_COPIES = ["app.py~", "notes.txt.bak", "#main.py#", ".main.py.swp", "README.md.orig"]


def open_at(client: Any, path: Path, marked: str) -> tuple[str, types.Position]:
    text, pos = split_cursor(marked)
    item = types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(item))
    return path.as_uri(), pos


def ask(files: list[str]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "explain"}], "context": {"files": files}, "maxTokens": 8}


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    for i, name in enumerate(SECRET_COPIES):
        (ws / name).write_text(f"API_KEY=leaked-copy-{i}\n")
    for i, name in enumerate(ORDINARY_COPIES):
        (ws / name).write_text(f"ordinary_copy_{i} = 1\n")
    return ws


@pytest.mark.parametrize("name", SECRET_COPIES)
def test_backup_copy_of_a_secret_file_is_secret(copies: Path, name: str) -> None:
    privacy = Privacy([], [copies.as_uri()])
    assert privacy.is_secret((copies / name).as_uri()), name
    assert privacy.read((copies / name).as_uri()) is None


def test_backup_copies_of_user_excluded_files_are_excluded(copies: Path) -> None:
    """The user's own ``chat.excludeGlobs`` cover a file's backups too."""
    (copies / "customers.csv.bak").write_text("alice,1\n")
    privacy = Privacy(["customers.csv", "private/*.sql"], [copies.as_uri()])
    assert privacy.is_secret((copies / "customers.csv.bak").as_uri())
    assert privacy.is_secret((copies / "#customers.csv#").as_uri())
    assert privacy.is_secret((copies / "private" / "dump.sql~").as_uri())
    assert privacy.is_secret((copies / ".ssh.bak" / "config").as_uri())  # a copied secret folder


async def test_backup_copies_of_secret_files_are_never_attached_to_chat(backend: FakeBackend, copies: Path) -> None:
    """Attached by name, every backup copy of a secret is refused and said so; backups of
    ordinary files are attached (the filter does not overreach)."""
    backend.default = Reply(chunks=["ok"])
    secret = [(copies / n).as_uri() for n in SECRET_COPIES]
    files = secret + [(copies / n).as_uri() for n in ORDINARY_COPIES]
    async with session(options(backend.url), workspace=copies.as_uri()) as client:
        capture_partials(client)
        result = as_dict(await chat_request(client, ask(files)))
    body = str([r.body for r in backend.requests])
    assert "leaked-copy" not in body
    assert all(f"ordinary_copy_{i} = 1" in body for i in range(len(ORDINARY_COPIES)))
    assert set(result["excludedContext"]) == set(secret)
    assert "a secret file" in str(result["excludedWhy"])


async def test_open_backup_copies_of_secret_files_are_not_completion_context(
    backend: FakeBackend, copies: Path
) -> None:
    """Open in the editor (Emacs shows ``#.env#`` after a crash), a secret's copy is neither
    context for another file nor completed in."""
    backend.default = Reply(chunks=["x"])
    async with session(options(backend.url, contextSources=["open-files", "recent-edits"]),
                       workspace=copies.as_uri()) as client:
        for i, name in enumerate(SECRET_COPIES[:6]):
            open_at(client, copies / name, f"def helper():\n    return 'leaked-copy-{i}'\n█")
        open_at(client, copies / "helper.py", "def helper():\n    return 'visible-context'\n█")
        uri, pos = open_at(client, copies / "main.py", "def main():\n    return helper()█\n")
        assert await inline(client, uri, pos) == "x"
        env_uri, env_pos = open_at(client, copies / "#.env#", "SECRET=1\n█")
        before = len(backend.requests)
        assert await inline(client, env_uri, env_pos) is None
        assert len(backend.requests) == before
    body = str([r.body for r in backend.requests])
    assert "leaked-copy" not in body and "visible-context" in body


# -- names Windows, a Samba share or a secrets folder make of a secret ------------------------------
ALIASES = ["server.key.", ".env ", "server.pem. . ", ".env::$DATA", "prod.tfvars:Zone.Identifier", ".ENV::$data",
           "prod.env.bak.orig.save.tmp.old.rej.copy.bak.orig~", "x.PEM.bak\t"]


@pytest.mark.parametrize("name", ALIASES)
def test_windows_alias_or_deep_backup_of_a_secret_name_is_secret(tmp_path: Path, name: str) -> None:
    """Trailing dots and spaces and NTFS streams name the same file on Windows and over SMB
    (``server.key.`` is ``server.key``; a download's ``:Zone.Identifier`` shows up as a file of its
    own in WSL and on copies); ten layers of backup suffixes are still a backup of ``prod.env``."""
    privacy = Privacy([], [tmp_path.as_uri()])
    (tmp_path / name).write_text("API_KEY=leaked\n")
    assert privacy.is_secret((tmp_path / name).as_uri()), name
    assert privacy.read((tmp_path / name).as_uri()) is None


def test_files_in_a_secrets_folder_are_secret(tmp_path: Path) -> None:
    """``secrets/prod.yaml`` (sops, helm-secrets, Docker and Kubernetes secret mounts): the name
    says nothing, the folder says everything."""
    for folder in ("secrets", ".secrets", "Secrets"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "prod.yaml").write_text("db_password: hunter2\n")
        assert Privacy([], [tmp_path.as_uri()]).read((tmp_path / folder / "prod.yaml").as_uri()) is None, folder


# -- which folders are a workspace -----------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["file:///.", "file:////", "file:///tmp/..", "link", "link/", "file:///tmp",
                                      "file:///etc"])
def test_workspace_folder_that_is_the_whole_system_is_no_workspace(tmp_path: Path, spelling: str) -> None:
    """A folder that resolves to ``/`` (``/.``, ``//``, ``/tmp/..``, a link to ``/``) or a folder
    right under it made every file on the machine "inside the workspace": it is dropped, and the
    current document's own folder stands in, as with no folder at all."""
    (tmp_path / "link").symlink_to("/")
    root = spelling if "://" in spelling else (tmp_path / spelling).as_uri() + ("/" if spelling.endswith("/") else "")
    privacy = Privacy([], [root])
    assert privacy.roots == []
    (tmp_path / "proj").mkdir()
    (tmp_path / "elsewhere.py").write_text("x = 1\n")
    here = (tmp_path / "proj" / "main.py").as_uri()
    assert privacy.read((tmp_path / "elsewhere.py").as_uri(), privacy.scope(here)) is None
    assert not privacy.allowed("file:///etc/hostname", privacy.scope(here))


def test_another_machines_file_uri_is_not_a_local_file(tmp_path: Path) -> None:
    """``file://host/share/x`` (a UNC path) names another machine's file, even when its path looks
    like the workspace's: never read from local disk, never context, never a workspace folder."""
    (tmp_path / "notes.py").write_text("local = 1\n")
    privacy = Privacy([], [tmp_path.as_uri()])
    remote = f"file://fileserver{tmp_path}/notes.py"
    assert privacy.read(remote) is None and not privacy.allowed(remote, privacy.roots)
    assert privacy.readable(remote)[1] == "not an absolute file path"
    assert Privacy([], [f"file://fileserver{tmp_path}"]).roots == []
    assert privacy.read(f"file://localhost{tmp_path}/notes.py") == "local = 1\n"


def test_without_a_folder_a_top_level_system_folder_is_no_workspace(tmp_path: Path) -> None:
    """No folder declared: a document in ``/etc``, ``/home`` (when the home folder is elsewhere),
    ``/opt`` or ``/srv`` does not make that whole tree its workspace."""
    privacy = Privacy()
    for doc in ("file:///etc/app.conf", "file:///home/notes.py", "file:///opt/x.py", "file:///srv/x.py", "file:///x.py",
                "file:///usr/x.py", "file:///var/tmp/x.py"):
        assert privacy.scope(doc) == [], doc
    assert privacy.scope((tmp_path / "proj" / "a.py").as_uri()) == [tmp_path / "proj"]


# -- which file is read: the checked one, not what a racing swap put at its path ---------------------
SWAPPER = """
import os, sys
ws, outside = sys.argv[1], sys.argv[2]
sub, hidden = os.path.join(ws, "sub"), os.path.join(ws, ".sub-real")
while not os.path.exists(os.path.join(ws, "STOP")):
    os.rename(sub, hidden)        # the real folder steps aside...
    os.symlink(outside, sub)      # ...a link to a folder outside takes its place...
    os.unlink(sub)
    os.rename(hidden, sub)        # ...and the real folder comes back
"""


def test_folder_swapped_for_a_link_between_check_and_open_is_not_followed(tmp_path: Path) -> None:
    """A process of the attacker's swaps a folder of the workspace for a link to a folder outside
    with a file of the same name, again and again, while attachments are read: not one read may
    return the outside file (the path is opened component by component without following links,
    and the descriptor is checked against what was checked). Reads of the real file succeed."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "sub").mkdir(parents=True)
    outside.mkdir()
    (ws / "sub" / "notes.txt").write_text("inside the workspace\n")
    (outside / "notes.txt").write_text("OUTSIDE-THE-WORKSPACE\n")
    privacy = Privacy([], [ws.as_uri()])
    uri = (ws / "sub" / "notes.txt").as_uri()
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(ws), str(outside)])
    leaked = inside = 0
    try:
        end = time.monotonic() + 4.0
        while time.monotonic() < end and not leaked:
            text = privacy.read(uri)
            leaked += text is not None and "OUTSIDE" in text
            inside += text == "inside the workspace\n"
    finally:
        (ws / "STOP").touch()
        swapper.wait(10)
    assert leaked == 0
    assert inside > 0, "the race never let a read through: the test proves nothing"
    assert os.path.isdir(ws / "sub") and not os.path.islink(ws / "sub")
