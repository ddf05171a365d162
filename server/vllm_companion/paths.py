"""The process environment's one reader, the folders it names, and the private files in them.

Every folder this program keeps files in is resolved here and nowhere else (issue 21, point 6:
the state, cache and runtime folders were resolved three times, ``os.environ`` read in five
modules, and an empty ``VLLM_COMPANION_CACHE`` meant ``~/.cache`` itself to one of them):

- state (acceptance telemetry): ``$VLLM_COMPANION_STATE``, else ``$XDG_STATE_HOME/vllm-companion``,
  else ``~/.local/state/vllm-companion``;
- cache (converted models, calibration): ``$VLLM_COMPANION_CACHE``, else
  ``$XDG_CACHE_HOME/vllm-companion``, else ``~/.cache/vllm-companion``;
- runtime (the engine registry, its logs, ``loops.json``, the team key):
  ``$XDG_RUNTIME_DIR/vllm-companion``, else (or when ``$VLLM_COMPANION_CACHE`` is set, so that one
  variable moves everything, as the tests do) the cache folder's ``run``;
- config (the installation record the VS Code extension reads):
  ``$XDG_CONFIG_HOME/vllm-companion``, else ``~/.config/vllm-companion``;
- the Hugging Face hub cache, by huggingface_hub's own rule (``HF_HUB_CACHE``, ``HF_HOME/hub``,
  ``$XDG_CACHE_HOME/huggingface/hub``, ``~/.cache/huggingface/hub``), read only.

As the XDG base directory spec says (specifications.freedesktop.org/basedir-spec), an ``XDG_*``
variable that is empty or not absolute is ignored; our own ``VLLM_COMPANION_*`` variables count
when non-empty. Nothing here creates a folder: ``private_dir`` does, where a caller needs it.

Our own variables must be absolute too: editors start the server in the project folder, where a
relative one would put the engine record and the team key in the repository, beside whatever a
checkout planted there.

``private_dir`` makes or checks a folder of ours, 0700, whose every folder above (as given and as
resolved) is ours or root's and writable by nobody else unless sticky (``/tmp``): whoever may
rename entries up there could swap our folder for theirs after any check. ``write_private`` is the
one atomic private write (the registry record, ``loops.json``, the calibration, the team key, the
installation record): a fresh temporary file of an unguessable name (``O_EXCL|O_NOFOLLOW``, so a
link, a hard link or a file planted there is never written), 0600 whatever the umask, renamed
over the target, so a reader sees the old or the new text, never half of one; temporary files
that crashed writers left are swept. ``read_private`` reads a bounded regular file of ours that
nobody else may write, without following a link or blocking. ``child_env`` keeps the user's keys
(``SECRETS``) from every child that is not handed them. tests/adversarial/test_paths.py attacks
all of it; tests/unit/test_structure.py checks that no other module reads ``os.environ``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import secrets
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

APP = "vllm-companion"
# The user's keys: the endpoint's (config.py) and the team's (cli_team.py). No child reads them
# from its environment unless handed them (``child_env``'s ``extra``: engine start's own service).
SECRETS = frozenset({"VLLM_COMPANION_API_KEY", "VLLM_COMPANION_ENGINE_KEY"})
MAX_SECONDS = 86400.0  # a tunable beyond a day is a typo (time.sleep(1e308) raises OverflowError)
STALE_S = 600.0  # a temporary file this old is a crashed writer's (a write takes milliseconds)
SWEEP_ENTRIES = 4096  # folder entries looked at per sweep
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeDirectory(Exception):
    """A folder of ours belongs to someone else, or is not a folder."""


def variable(name: str) -> str | None:
    """The environment variable ``name``; None when unset or empty."""
    return os.environ.get(name) or None


def variables(names: Iterable[str]) -> dict[str, str]:
    """Those of ``names`` that are set and not empty (config.py's settings from the environment)."""
    return {name: value for name in names if (value := variable(name))}


def take(name: str) -> str:
    """``name``'s value, removed from this process's environment so that no child inherits it
    (engine/front.py's keys); "" when unset."""
    return os.environ.pop(name, "")


def seconds(name: str, default: float) -> float:
    """A tunable duration (tests shorten the guard's): ``default`` unless a finite, positive number
    of at most ``MAX_SECONDS``."""
    try:
        value = float(variable(name) or default)
    except ValueError:
        return default
    return value if math.isfinite(value) and 0 < value <= MAX_SECONDS else default


def child_env(extra: Mapping[str, str], drop: Iterable[str] = ()) -> dict[str, str]:
    """The environment for a child process: ``extra`` first (engine/signals.py reads a bounded head of
    a process's environment for the guard's mark), then this process's own, less ``drop`` and
    less the user's keys (``SECRETS``) unless ``extra`` hands them over."""
    gone = set(drop) | set(extra) | SECRETS
    return {**extra, **{k: v for k, v in os.environ.items() if k not in gone}}


def _absolute(name: str) -> Path | None:
    """``name``'s value when it is an absolute path (the XDG rule, for our variables too)."""
    value = variable(name)
    return Path(value) if value and os.path.isabs(value) else None


def _xdg(name: str, fallback: str) -> Path:
    return _absolute(name) or Path.home() / fallback


def state_dir() -> Path:
    return _absolute("VLLM_COMPANION_STATE") or _xdg("XDG_STATE_HOME", ".local/state") / APP


def cache_dir() -> Path:
    return _absolute("VLLM_COMPANION_CACHE") or _xdg("XDG_CACHE_HOME", ".cache") / APP


def runtime_dir() -> Path:
    base = _absolute("XDG_RUNTIME_DIR")
    return base / APP if base and not _absolute("VLLM_COMPANION_CACHE") else cache_dir() / "run"


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / APP


def hf_hub_cache() -> Path:
    """Where huggingface_hub keeps models (its ``constants.py``), so ``doctor`` and the CPU plan
    find what it downloaded."""
    if hub := variable("HF_HUB_CACHE"):
        return Path(hub)
    home = variable("HF_HOME")
    return (Path(home) if home else _xdg("XDG_CACHE_HOME", ".cache") / "huggingface") / "hub"


def check_above(folder: Path) -> None:
    """Every existing folder above ``folder``, on the given and on the resolved path: ours or
    root's, and writable by nobody else unless sticky (one's own group counts as one's own)."""
    given = Path(os.path.abspath(folder))
    for parent in sorted({*given.parents, *Path(os.path.realpath(given)).parents}):
        try:
            info = os.stat(parent)
        except FileNotFoundError:
            continue
        if info.st_uid not in (0, os.getuid()):
            raise UnsafeDirectory(f"{parent} (above {folder}) belongs to uid {info.st_uid}: others could swap it")
        mode = stat.S_IMODE(info.st_mode)
        shared = mode & 0o002 or (mode & 0o020 and info.st_gid != os.getgid())
        if shared and not info.st_mode & stat.S_ISVTX:
            raise UnsafeDirectory(f"{parent} (above {folder}) is writable by others: refusing to use it")


def private_dir(path: Path) -> Path:
    """Create ``path`` 0700, or check an existing one: ours, not a link, and not open to others
    (closed through the descriptor checked, never by path); the folders above as ``check_above``."""
    check_above(path)  # before mkdir: nothing is made in another user's folder
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_above(path)  # after: parents mkdir made under an open umask are 0777
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:  # ELOOP, ENOTDIR: a link or not a folder
        raise UnsafeDirectory(f"{path} is not a directory owned by you: refusing to use it") from exc
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid():
            raise UnsafeDirectory(f"{path} is not a directory owned by you: refusing to use it")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` 0600 and atomically, never through anything planted: a fresh
    temporary file of an unguessable name, made with ``O_EXCL`` (two writers never share one, and
    no link or file someone put there is opened), renamed over ``path``; removed again when the
    write fails. Temporary files of ``path`` older than ``STALE_S`` (crashed writers') go first."""
    _sweep(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, _WRITE_FLAGS, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits away, even the owner's
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _sweep(path: Path) -> None:
    """Remove ``path``'s temporary files that writers killed between write and rename left."""
    prefix, before = f".{path.name}.", time.time() - STALE_S
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in itertools.islice(entries, SWEEP_ENTRIES):
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                info = entry.stat(follow_symlinks=False)
                if info.st_uid == os.getuid() and info.st_mtime < before:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def read_private(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of the regular file at ``path``, opened without following a link
    and without blocking (a FIFO planted there returns at once); None when it is missing, not a
    regular file, not ours, writable by others or longer than ``limit``."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
            data = f.read(limit + 1)
        except OSError:
            return None
    return data if len(data) <= limit else None
