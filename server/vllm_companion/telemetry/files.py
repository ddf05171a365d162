"""Where the acceptance store lives, and how it is opened without following anyone's links or
running anyone's SQL.

The store is a file in the user's state folder. Before SQLite sees its path:
- every folder above the state folder (as given and as resolved) must be ours or root's and
  writable by nobody else unless sticky (``/tmp``): SQLite opens the store, and later its
  ``-wal`` and ``-shm``, by path, so whoever may rename entries up there could swap our folder
  for theirs after the checks below (links up there are fine when they lead through our folders);
- the folder is opened with ``O_NOFOLLOW | O_DIRECTORY`` and must be ours and writable by nobody
  else (one that others may only read is closed to them: 0700);
- the file is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO never blocks) relative to that
  folder and must be a regular file of ours with one link (0600); SQLite's side files (``-wal``,
  ``-shm``, ``-journal``), when present, likewise.
SQLite then opens it read-write without creating it (``mode=rw``: a file swapped for a dangling
link after the checks is not created through it), the file must still be the one checked, and it
must hold nothing but the store's own table (``check_schema``): a view or trigger someone planted
would run in our writer (an endless recursive query hung ``stats`` for good). Every statement has
a deadline (``bound``). The checked descriptor stays open while a connection of this process to
the file is (``_hold``): closing it would drop SQLite's own locks. A planted symlink or hard link
to another application's database is refused before anything is chmod-ed or converted to WAL
(issue 19, point 7: the store used to convert another program's SQLite file to WAL through a
symlink).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from urllib.parse import quote

from .. import paths

SIDE_FILES = ("-wal", "-shm", "-journal")
STEP_S = 5.0  # the longest one statement may run (reading all 100,000 rows, checks included: 0.8 s here)
_HELD: dict[tuple[int, int], tuple[int, list[int]]] = {}  # per (device, inode): users, checked descriptors
_HELD_LOCK = threading.Lock()  # the writer thread and a reader may open the store at once


class UnsafeStore(Exception):
    """The state folder, a folder above it or the store file is a link, not ours, open to others,
    not a plain file, or holds what this program did not make."""


def state_dir() -> Path:
    """``$VLLM_COMPANION_STATE``, else ``$XDG_STATE_HOME/vllm-companion``, else
    ``~/.local/state/vllm-companion`` (the XDG base directory spec's state home; ``paths.py``)."""
    return paths.state_dir()


def open_db(path: Path, create: bool, busy_s: float, schema: str) -> sqlite3.Connection | None:
    """A connection to ``path`` after the checks above; None when it does not exist and ``create``
    is false (a reader never creates the store); ``schema``: the one table it may hold. Raises
    ``UnsafeStore``, ``OSError`` or ``sqlite3.Error``."""
    try:
        paths.check_above(path.parent)  # the same rule as every private folder of ours
    except paths.UnsafeDirectory as exc:
        raise UnsafeStore(str(exc)) from exc
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
        if (checked := _checked_file(folder, path, create)) is None:
            return None
        try:
            for suffix in SIDE_FILES:
                _check_side_file(folder, path.name + suffix)
            db = sqlite3.connect(f"file:{quote(str(path))}?mode=rw", timeout=busy_s, uri=True, factory=Store)
        except BaseException:
            _release(checked)
            raise
        db.checked = checked  # from now on the connection lets go of it, when closed
        _verify(db, folder, path, checked, schema)
        return db
    finally:
        os.close(folder)


class Store(sqlite3.Connection):
    """A connection to the store that holds on to the descriptor its file was checked through
    until it is closed (``_hold``)."""

    checked: tuple[int, int] | None = None

    def close(self) -> None:
        super().close()
        if (key := self.checked) is not None:
            self.checked = None
            _release(key)


def _verify(db: Store, folder: int, path: Path, checked: tuple[int, int], schema: str) -> None:
    """SQLite's own open of the checked file: never created by SQLite, still the file checked
    (whose descriptor is still open, so its inode number cannot have gone to a link swapped in:
    it did, on this file system, when the descriptor was closed first), holding only ``schema``.
    Closes ``db`` when it is not."""
    try:
        after = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != checked:
            raise UnsafeStore(f"{path} changed while it was opened: refusing to use it")
        check_schema(db, path, schema)
    except BaseException:
        db.close()
        raise


def bound(db: sqlite3.Connection, seconds: float = STEP_S) -> None:
    """From now, a statement still running ``seconds`` later is interrupted (SQLITE_INTERRUPT):
    whatever the file holds, no read or write runs longer."""
    end = time.monotonic() + seconds
    db.set_progress_handler(lambda: time.monotonic() > end, 1000)


def check_schema(db: sqlite3.Connection, path: Path, schema: str) -> None:
    """The store holds nothing (new) or only the ``events`` table as ``schema`` makes it (SQLite
    keeps a table's statement without its ``IF NOT EXISTS``)."""
    bound(db)
    mine = ("table", "events", " ".join(schema.replace("IF NOT EXISTS ", "").split()))
    found = [(kind, name, " ".join(str(sql).split())) for kind, name, sql
             in db.execute("SELECT type, name, sql FROM sqlite_schema LIMIT 2")]
    if found not in ([], [mine]):
        raise UnsafeStore(f"{path} holds tables, views or triggers this program did not make: refusing to use it")


def _check_folder(fd: int, where: Path) -> None:
    info = os.fstat(fd)
    if info.st_uid != os.getuid():
        raise UnsafeStore(f"{where} is owned by uid {info.st_uid}, not you: refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o022:  # others may have planted files there already
        raise UnsafeStore(f"{where} is writable by others: refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.fchmod(fd, 0o700)  # ours: close it, through the descriptor we checked


def _checked_file(folder: int, path: Path, create: bool) -> tuple[int, int] | None:
    """The store's (device, inode), checked through a descriptor that stays open (``_hold``);
    None when there is none."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path.name, flags, 0o600, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink
        raise UnsafeStore(f"{path} is not a plain file ({exc.strerror}): refusing to use it") from exc
    key = _hold(fd)
    try:
        info = os.fstat(fd)
        _check_plain(info, path.name)
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    except BaseException:
        _release(key)
        raise
    return key


def _hold(fd: int) -> tuple[int, int]:
    """Keep ``fd`` open while this process has a connection to its file (one more user of it).

    Closing any descriptor of a file drops every POSIX lock this process holds on it, SQLite's
    included (sqlite.org/howtocorrupt.html, 2.2). A server that closed its checked descriptor
    after SQLite had opened an existing WAL store lost the shared lock that tells other
    connections it is there: the other server, exiting, took itself for the last user and
    deleted the ``-wal`` this one went on writing into (its events never reached ``stats``)."""
    info = os.fstat(fd)
    key = (info.st_dev, info.st_ino)
    with _HELD_LOCK:
        users, fds = _HELD.get(key, (0, []))
        _HELD[key] = (users + 1, [*fds, fd])
    return key


def _release(key: tuple[int, int]) -> None:
    """One user fewer; with none left, no connection of ours holds a lock on the file and its
    descriptors are closed (under the lock: a connection opened meanwhile holds it first)."""
    with _HELD_LOCK:
        users, fds = _HELD.pop(key)
        if users > 1:
            _HELD[key] = (users - 1, fds)
            return
        for fd in fds:
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
