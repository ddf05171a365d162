"""The key a team engine requires (``engine start --team``/``--api-key``/``--api-key-file``): where it
comes from, and the rule that nothing listens beyond loopback without one (docs/deployment.md,
docs/security.md). With a key, the engine (or a fleet's router) listens on loopback and the front
on ``--host`` (engine/front.py). The key never goes on a command line (cli_engine.py moves a
``--api-key`` to the environment).
"""

from __future__ import annotations

import argparse
import secrets
import sys

from . import paths
from .engine.registry import runtime_dir
from .loopback import is_loopback
from .paths import read_private, write_private

MAX_KEY_BYTES = 4096  # of a key file (or the stored key) read


def given_key(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The key from ``--api-key-file`` (its first line, at most 4 KiB read) or the environment."""
    if not args.api_key_file:
        return paths.variable("VLLM_COMPANION_ENGINE_KEY"), None
    try:
        with open(args.api_key_file, "rb") as f:
            lines = f.read(MAX_KEY_BYTES).decode("utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"--api-key-file: cannot read {args.api_key_file}: {exc.__class__.__name__}"
    key = lines[0].strip() if lines else ""
    return (key, None) if key else (None, f"--api-key-file {args.api_key_file} is empty")


def team_key(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The key a team engine requires (given, from the environment, stored, or made and shown
    once), or why the start is refused: never beyond loopback without a key."""
    host = args.host or "127.0.0.1"
    key, problem = given_key(args)
    if problem:
        return None, problem
    if not is_loopback(f"http://{host}/") and host not in ("0.0.0.0", "::"):
        return None, f"--host {host}: listen on 0.0.0.0 or loopback (and put a TLS proxy in front; docs/deployment.md)"
    if not is_loopback(f"http://{host}/") and not (args.team or key):
        return None, f"refusing to listen on {host} without an API key: add --team (a key is made) or --api-key KEY"
    if not args.team or key:
        return key, None
    stored = runtime_dir() / "team.key"
    kept = (read_private(stored, MAX_KEY_BYTES) or b"").decode("utf-8", "replace").split()  # a FIFO, link,
    if kept:  # huge, empty or another user's file is no key: a new one replaces it
        return kept[0], None
    key = secrets.token_urlsafe(32)
    write_private(stored, key + "\n")
    print(f"team API key (shown once; stored in {stored}):\n{key}", file=sys.stderr)
    return key, None
