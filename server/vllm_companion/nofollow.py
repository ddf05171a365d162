"""Read the file that was checked, not whatever a racing process put at its path since.

A path check (``realpath``, then "inside the workspace, not secret, a small regular file") and
the ``open`` that follows are two moments; between them a folder on the path or the file itself
can be swapped for a link to elsewhere. ``O_NOFOLLOW`` guards the last component only: the issue
19 audit got 313 of 37,927 racing reads through by swapping a folder. So the path is opened one
component at a time with ``openat(2)`` and ``O_NOFOLLOW`` from ``/`` (what ``openat2``'s
``RESOLVE_NO_SYMLINKS`` does, which Python does not expose), and the descriptor, not the path, is
checked: ``fstat`` must show the same regular file (device, inode) that was checked, within the
size cap. Reads come from that descriptor, non-blocking (a FIFO swapped in cannot hang us).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def read_checked(path: Path, checked: os.stat_result, limit: int) -> bytes | None:
    """At most ``limit`` + 1 bytes of the file ``checked`` (its ``lstat``) describes, or None when
    what opens at ``path`` now is not that same regular file within ``limit``."""
    try:
        fd = open_nofollow(path)
    except OSError:
        return None
    try:
        now = os.fstat(fd)
        same = (now.st_dev, now.st_ino) == (checked.st_dev, checked.st_ino)
        if not same or not stat.S_ISREG(now.st_mode) or now.st_size > limit:
            return None
        data = b""
        while len(data) <= limit and (chunk := os.read(fd, limit + 1 - len(data))):
            data += chunk
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def open_nofollow(path: Path) -> int:
    """``path`` (absolute, already resolved) opened for reading one component at a time with
    ``openat(2)`` and ``O_NOFOLLOW``, from ``/``: a folder or the file swapped for a link after
    the check fails to open (``ELOOP``/``ENOTDIR``) instead of leading elsewhere."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in path.parts[1:-1]:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        return os.open(path.name, _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
