"""What may leave the editor: one filter for every context source, chat and edit alike.

Three rules (docs/security.md):

1. **Secret files are never sent.** A file is secret when its name or any folder on its path
   matches ``SECRET_NAMES`` / ``SECRET_DIRS`` or the user's globs, compared case-insensitively on
   the normalised path *and* on the resolved one (a symlink ``notes.txt -> id_rsa`` is
   ``id_rsa``), with and without an editor's backup decorations (``.env~``, ``#.env#``,
   ``prod.env.bak``, ``.id_rsa.swp``: a copy of a secret is a secret). Lists after gitleaks' and
   GitHub secret scanning's file rules, and Copilot's content exclusions.
2. **Files only from the workspace.** Context (open documents too) comes only from files whose
   resolved path lies inside a workspace folder (``scope``: with no folder declared, the current
   document's own folder). A file read from disk must also be a small regular file, never
   ``/proc``, ``/sys``, ``/dev``, a FIFO or a device, whatever the URI says; it is opened one path
   component at a time without following a link, and the opened descriptor is checked against
   what was checked by path (nofollow.py): a file swapped for a link in between is not read.
3. **Inline secrets are redacted** (``redact``) by high-precision patterns (PEM private keys,
   AWS keys, GitHub, Slack, Google, Stripe, OpenAI/Anthropic tokens) from every context snippet
   and chat message, and from everything sent to an endpoint that is not on loopback. Each
   secret becomes a numbered placeholder; ``Redaction.restore`` puts it back into an edit
   (redaction.py).
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from .nofollow import read_checked
from .redaction import Redaction, redact

__all__ = [
    "MAX_FILE_BYTES", "SECRET_DIRS", "SECRET_NAMES", "Privacy", "Redaction", "file_name", "path_of", "redact",
    "undecorated",
]

SECRET_NAMES = (
    ".env", ".env.*", "*.env", ".envrc", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".npmrc", ".pypirc",
    ".htpasswd", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "*.kdbx", "*.tfstate",
    "*.tfstate.*", "*.tfvars", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "credentials*", "*secret*",
    "*.gpg", "*.asc", "kubeconfig", "service-account*.json",
)
SECRET_DIRS = (".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", ".gcloud", ".password-store", "secrets",
               ".secrets")
SYSTEM_ROOTS = ("/proc", "/sys", "/dev", "/run")
TEMP_DIRS = ("/tmp", "/var/tmp")
WIDE_DIRS = ("/etc", "/usr", "/var", "/opt", "/srv", "/home", "/Users", "/mnt", "/media", "/Volumes", "/private",
             "/private/tmp", "/private/var/tmp",
             "/private/var", "/nix", "/snap")
MAX_FILE_BYTES = 256_000

def path_of(uri: str) -> str:
    """A ``file:`` URI's path (percent-decoded); anything else is taken as a path already."""
    return unquote(urlparse(uri).path) if "://" in uri else uri


def file_name(uri: str) -> str:
    """The last part of a URI's path (percent-decoded), as prompts and fences name a file."""
    return path_of(uri).rsplit("/", 1)[-1]


# Editor backup, autosave, swap and packaging copies: Emacs ``name~``, ``name.~1~``, ``#name#``,
# ``.#name``; Vim ``.name.swp`` (``.swo``..``.swa``), ``.name.un~``; nano ``name.save``(``.1``);
# JetBrains ``name___jb_tmp___``; patch ``.orig``/``.rej``; dpkg/rpm/ucf config copies; ``.bak``,
# ``.old``, ``.tmp`` and file-manager copies (``name copy``, ``name (1)``); and what Windows (or a
# Samba share) treats as the same file: trailing dots and spaces (``.env.``, ``.env ``) and an
# NTFS stream (``.env::$DATA``, ``x.pem:s``). Stripping is only used to find *more* secrets (the
# raw name is matched too), so a wide list costs nothing but caution.
_WRAPPED = re.compile(r"^(?:#(.+)#|\.#(.+))$")
_DECORATION = re.compile(
    r"(?:~|\.~\d+~|\.un~|\.sw[a-p]|___jb_(?:tmp|old|bak)___| copy(?: \d+)?| \(\d+\)"
    r"|[.~_-](?:bak|backup|bk|orig|old|save|sav|tmp|temp|rej|copy|dpkg-(?:old|dist|new|bak)|rpm(?:save|new|orig)"
    r"|ucf-(?:old|dist|new))(?:[.~_-]?\d+)?|[.\s]+|:.*)$"
)
MAX_DECORATIONS = 32  # layers stripped (prod.env.bak.orig~); a name on disk is at most 255 bytes


def undecorated(name: str) -> set[str]:
    """``name`` and every form of it without editor backup decorations, outermost first:
    ``#prod.env.bak#`` gives ``prod.env.bak`` and ``prod.env``; a hidden swap file ``.id_rsa.swp``
    gives ``.id_rsa`` and ``id_rsa`` (Vim adds the dot)."""
    found, current = {name}, name
    for _ in range(MAX_DECORATIONS):
        wrapped = _WRAPPED.match(current)
        stripped = (wrapped.group(1) or wrapped.group(2)) if wrapped else _DECORATION.sub("", current)
        if stripped in ("", current):
            break
        found.add(stripped)
        if stripped.startswith(".") and len(stripped) > 1:
            found.add(stripped[1:])
        current = stripped
    return found


@functools.lru_cache(maxsize=1024)  # a pure function of its text: 0.06-0.08 ms per completion (issue 21)
def _matches(path: str, globs: tuple[str, ...]) -> bool:
    parts = [p for p in os.path.normpath(path).lower().split("/") if p]
    if not parts:
        return False
    if any(d in SECRET_DIRS for part in parts[:-1] for d in undecorated(part)):  # .ssh~/config too
        return True
    folder = "/" + "".join(p + "/" for p in parts[:-1])
    names = undecorated(parts[-1])
    for pattern in globs:  # a pattern with a "/" is matched against the path, others the name
        pattern = pattern.lower()
        for name in names:
            if "/" not in pattern:
                if fnmatch.fnmatchcase(name, pattern):
                    return True
            elif fnmatch.fnmatchcase(folder + name, pattern) or fnmatch.fnmatchcase(
                folder + name, "*/" + pattern.lstrip("/")
            ):
                return True
    return False


class Privacy:
    """The filter, with the user's globs and the workspace folders (from the editor)."""

    def __init__(self, extra_globs: Iterable[str] = (), roots: Iterable[str] = ()) -> None:
        self.globs: tuple[str, ...] = SECRET_NAMES
        self.roots: list[Path] = []
        self.update(extra_globs, roots)

    def update(self, extra_globs: Iterable[str] | None = None, roots: Iterable[str] | None = None) -> None:
        """New user globs (settings) or workspace folders (``initialize``, folder changes)."""
        if extra_globs is not None:
            self.globs = (*SECRET_NAMES, *(g for g in extra_globs if isinstance(g, str)))
        if roots is not None:
            self.roots = [root for r in roots if (root := _resolved(r)) is not None and not _everything(root)]

    def is_secret(self, uri: str) -> bool:
        path = path_of(uri)
        if _matches(path, self.globs):
            return True
        try:
            real = os.path.realpath(path) if path.startswith("/") else path
        except (OSError, ValueError):
            return True
        return real != path and _matches(real, self.globs)

    def scope(self, uri: str) -> list[Path]:
        """The folders context for the document ``uri`` may come from: the workspace folders. With
        none declared (an editor in single-file mode: Neovim without a root, VS Code with a lone
        file), the document's own folder stands in for one, as Emacs' eglot does for a file
        outside any project; none at all when that folder is ``/``, a system-wide one (``/etc``,
        ``/home``, ``/opt``: ``WIDE_DIRS``), the home folder or above it, a temporary or a system
        folder, whose subtrees hold everything and everyone."""
        if self.roots:
            return self.roots
        real = _resolved(uri)
        if real is None:
            return []
        folder, home = real.parent, Path(os.path.realpath(os.path.expanduser("~")))
        return [] if folder == home or folder in home.parents or _everything(folder) else [folder]

    def allowed(self, uri: str, roots: Sequence[Path]) -> bool:
        """May the open document ``uri`` be context: its resolved path inside ``roots``, not secret."""
        real = _resolved(uri)
        return real is not None and not _system(real) and _inside(real, roots) and not self.is_secret(uri)

    def readable(self, uri: str, roots: Sequence[Path] | None = None) -> tuple[Path | None, str]:
        """The resolved path of a file we may read from disk, or None and why not."""
        found = self._check(uri, self.roots if roots is None else roots)
        return (None, found) if isinstance(found, str) else (found[0], "")

    def read(self, uri: str, roots: Sequence[Path] | None = None) -> str | None:
        """A small text file from the workspace (``roots``: the workspace folders unless given), or
        None (see ``readable``). What is read is the file that was checked (nofollow.py)."""
        found = self._check(uri, self.roots if roots is None else roots)
        data = None if isinstance(found, str) else read_checked(*found, MAX_FILE_BYTES)
        if data is None or len(data) > MAX_FILE_BYTES or b"\x00" in data:
            return None
        return data.decode("utf-8", "replace")

    def _check(self, uri: str, roots: Sequence[Path]) -> tuple[Path, os.stat_result] | str:
        """The resolved path and its ``lstat``, or why the file may not be read."""
        if _local(uri) is None:
            return "not an absolute file path"
        real = _resolved(uri)
        if real is None:
            return "not readable"
        if _system(real):
            return "a system path"
        if not _inside(real, roots):
            return "outside the workspace folders"
        if self.is_secret(uri):
            return "a secret file"
        try:
            info = os.lstat(real)
        except OSError:
            return "not readable"
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return "not a small regular file"
        return real, info


def _local(uri: str) -> str | None:
    """The absolute local path a ``file:`` URI (or a bare path) names; None for anything else
    (``untitled:``, ``https://``, ``file://otherhost/``, a relative path)."""
    if "://" in uri:
        parts = urlparse(uri)
        if parts.scheme.lower() != "file" or parts.netloc.lower() not in ("", "localhost"):
            return None  # another scheme, or another machine's file (``file://host/share/x``)
    path = path_of(uri)
    return path if path.startswith("/") and "\x00" not in path else None


def _resolved(uri: str) -> Path | None:
    """The local path with every link resolved; None when there is none, or when it changes
    under our feet (a link that vanished while it was being resolved)."""
    path = _local(uri)
    try:
        return Path(os.path.realpath(path)) if path is not None else None
    except OSError:
        return None


def _everything(real: Path) -> bool:
    """``/``, a system-wide folder (``/etc``, ``/home``, ``/usr``, ``/tmp``...) or a system path:
    a subtree of the whole system and of every user, never one project's workspace."""
    wide = {"/", *WIDE_DIRS, *TEMP_DIRS, *(os.path.realpath(t) for t in TEMP_DIRS)}
    return str(real) in wide or _system(real)


def _system(real: Path) -> bool:
    return any(str(real) == r or str(real).startswith(r + "/") for r in SYSTEM_ROOTS)


def _inside(real: Path, roots: Sequence[Path]) -> bool:
    return any(real == root or root in real.parents for root in roots)
