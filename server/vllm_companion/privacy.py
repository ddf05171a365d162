"""What may leave the editor: one filter for every context source, chat and edit alike.

Three rules (docs/security.md):

1. **Secret files are never sent.** A file is secret when its name or any folder on its path
   matches ``SECRET_NAMES`` / ``SECRET_DIRS`` or the user's globs, compared case-insensitively on
   the normalised path *and* on the resolved one (a symlink ``notes.txt -> id_rsa`` is
   ``id_rsa``). Lists after gitleaks' and GitHub secret scanning's file rules, and Copilot's
   content exclusions.
2. **Files from disk only from the workspace.** A chat attachment the editor has not opened is
   read only if its resolved path lies inside a workspace folder and is a small regular file:
   never ``/proc``, ``/sys``, ``/dev``, a FIFO or a device, whatever the URI says.
3. **Inline secrets are redacted** (``redact``) by high-precision patterns (PEM private keys,
   AWS keys, GitHub, Slack, Google, Stripe, OpenAI/Anthropic tokens) from every context snippet
   and chat message, and from everything sent to an endpoint that is not on loopback. Each
   secret becomes a numbered placeholder; ``Redaction.restore`` puts it back into an edit.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

SECRET_NAMES = (
    ".env", ".env.*", "*.env", ".envrc", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".npmrc", ".pypirc",
    ".htpasswd", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "*.kdbx", "*.tfstate",
    "*.tfstate.*", "*.tfvars", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "credentials*", "*secret*",
    "*.gpg", "*.asc", "kubeconfig", "service-account*.json",
)
SECRET_DIRS = (".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", ".gcloud", ".password-store")
SYSTEM_ROOTS = ("/proc", "/sys", "/dev", "/run")
MAX_FILE_BYTES = 256_000

_SECRETS = [
    ("private-key", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?:[\s\S]{0,16384}?-----END[A-Z0-9 ]*PRIVATE KEY"
     r"( BLOCK)?-----|[\s\S]{0,16384})"),
    ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    ("aws-secret-key", r"(?i:aws_secret_access_key)\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,255}"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,255}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("stripe-key", r"\b[sr]k_live_[0-9a-zA-Z]{24,255}\b"),
    ("api-token", r"\bsk-(?:proj|ant|svcacct)-[A-Za-z0-9_-]{20,255}"),
]
_PATTERN = re.compile("|".join(f"(?P<s{i}>{rx})" for i, (_, rx) in enumerate(_SECRETS)))


def path_of(uri: str) -> str:
    """A ``file:`` URI's path (percent-decoded); anything else is taken as a path already."""
    return unquote(urlparse(uri).path) if "://" in uri else uri


def file_name(uri: str) -> str:
    """The last part of a URI's path (percent-decoded), as prompts and fences name a file."""
    return path_of(uri).rsplit("/", 1)[-1]


def _matches(path: str, globs: Iterable[str]) -> bool:
    parts = [p for p in os.path.normpath(path).lower().split("/") if p]
    if not parts:
        return False
    name, full = parts[-1], "/" + "/".join(parts)
    if any(d in parts[:-1] for d in SECRET_DIRS):
        return True
    for pattern in globs:  # a pattern with a "/" is matched against the path, others the name
        pattern = pattern.lower()
        if "/" not in pattern:
            if fnmatch.fnmatchcase(name, pattern):
                return True
        elif fnmatch.fnmatchcase(full, pattern) or fnmatch.fnmatchcase(full, "*/" + pattern.lstrip("/")):
            return True
    return False


@dataclass
class Redaction:
    text: str
    found: dict[str, str] = field(default_factory=dict)  # placeholder -> secret

    def restore(self, text: str) -> str:
        for placeholder, secret in self.found.items():
            text = text.replace(placeholder, secret)
        return text


def redact(text: str) -> Redaction:
    """``text`` with every high-precision secret replaced by ``<redacted:KIND:N>``."""
    found: dict[str, str] = {}

    def sub(match: re.Match[str]) -> str:
        kind = _SECRETS[int(next(k for k, v in match.groupdict().items() if v is not None)[1:])][0]
        placeholder = f"<redacted:{kind}:{len(found) + 1}>"
        found[placeholder] = match.group(0)
        return placeholder

    if not _PATTERN.search(text):
        return Redaction(text)
    return Redaction(_PATTERN.sub(sub, text), found)


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
            paths = [path_of(r) for r in roots]
            self.roots = [Path(os.path.realpath(p)) for p in paths if p.startswith("/") and p != "/"]

    def is_secret(self, uri: str) -> bool:
        path = path_of(uri)
        if _matches(path, self.globs):
            return True
        try:
            real = os.path.realpath(path) if path.startswith("/") else path
        except (OSError, ValueError):
            return True
        return real != path and _matches(real, self.globs)

    def readable(self, uri: str) -> tuple[Path | None, str]:
        """The resolved path of a file we may read from disk, or None and why not."""
        path = path_of(uri)
        if not path.startswith("/") or "\x00" in path:
            return None, "not an absolute file path"
        real = Path(os.path.realpath(path))
        if any(str(real) == r or str(real).startswith(r + "/") for r in SYSTEM_ROOTS):
            return None, "a system path"
        if not any(real == root or root in real.parents for root in self.roots):
            return None, "outside the workspace folders"
        if self.is_secret(uri):
            return None, "a secret file"
        try:
            info = real.stat()
        except OSError:
            return None, "not readable"
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None, "not a small regular file"
        return real, ""

    def read(self, uri: str) -> str | None:
        """A small text file from the workspace, or None (see ``readable``)."""
        path, _ = self.readable(uri)
        if path is None:
            return None
        try:  # non-blocking and re-checked on the open file: a swap to a FIFO cannot hang us
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError:
            return None
        if len(data) > MAX_FILE_BYTES or b"\x00" in data:
            return None
        return data.decode("utf-8", "replace")
