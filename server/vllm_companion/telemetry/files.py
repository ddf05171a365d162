"""Where the acceptance store lives, and how it is opened without following anyone's links.

The store is a file in the user's state folder. Before SQLite sees its path, the folder is opened
with ``O_NOFOLLOW | O_DIRECTORY`` and must be ours and writable by nobody else (one that others
may only read is closed to them: 0700); the file is opened with ``O_NOFOLLOW`` relative to that
folder and must be a regular file of ours with one link (0600); SQLite's side files (``-wal``, ``-shm``,
``-journal``), when present, likewise. A planted symlink or hard link to another application's
database is refused before anything is chmod-ed or converted to WAL (issue 19, point 7: the store
used to convert another program's SQLite file to WAL through a symlink).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

SIDE_FILES = ("-wal", "-shm", "-journal")


class UnsafeStore(Exception):
    """The state folder or the store file is a link, not ours, or not a plain file."""


def state_dir() -> Path:
    """``$VLLM_COMPANION_STATE``, else ``$XDG_STATE_HOME/vllm-companion``, else
    ``~/.local/state/vllm-companion`` (the XDG base directory spec's state home)."""
    if own := os.environ.get("VLLM_COMPANION_STATE"):
        return Path(own)
    if xdg := os.environ.get("XDG_STATE_HOME"):
        return Path(xdg) / "vllm-companion"
    return Path.home() / ".local" / "state" / "vllm-companion"


def open_db(path: Path, create: bool, busy_s: float) -> sqlite3.Connection | None:
    """A connection to ``path`` after the checks above; None when it does not exist and ``create``
    is false (a reader never creates the store). Raises ``UnsafeStore``, ``OSError`` or
    ``sqlite3.Error``."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnsafeStore(f"{path.parent} is a symlink or not a folder: refusing to use it") from exc
    try:
        _check_folder(folder, path.parent)
        identity = _checked_file(folder, path, create)
        if identity is None:
            return None
        for suffix in SIDE_FILES:
            _check_side_file(folder, path.name + suffix)
        db = sqlite3.connect(path, timeout=busy_s)
        after = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
        if (after.st_dev, after.st_ino) != identity:  # swapped between the check and SQLite's open
            db.close()
            raise UnsafeStore(f"{path} changed while it was opened")
        return db
    finally:
        os.close(folder)


def _check_folder(fd: int, where: Path) -> None:
    info = os.fstat(fd)
    if info.st_uid != os.getuid():
        raise UnsafeStore(f"{where} is owned by uid {info.st_uid}, not you: refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o022:  # others may have planted files there already
        raise UnsafeStore(f"{where} is writable by others: refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.fchmod(fd, 0o700)  # ours: close it, through the descriptor we checked


def _checked_file(folder: int, path: Path, create: bool) -> tuple[int, int] | None:
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path.name, flags, 0o600, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink
        raise UnsafeStore(f"{path} is not a plain file ({exc.strerror}): refusing to use it") from exc
    try:
        info = os.fstat(fd)
        _check_plain(info, path.name)
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        return info.st_dev, info.st_ino
    finally:
        os.close(fd)


def _check_side_file(folder: int, name: str) -> None:
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    _check_plain(info, name)


def _check_plain(info: os.stat_result, name: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeStore(f"{name} is not a plain file: refusing to use it")
    if info.st_uid != os.getuid():
        raise UnsafeStore(f"{name} is owned by uid {info.st_uid}, not you: refusing to use it")
    if info.st_nlink != 1:  # a hard link to some other program's file
        raise UnsafeStore(f"{name} has {info.st_nlink} links: refusing to use it")
