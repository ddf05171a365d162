"""What a benchmark script sets up before its imports: the checkout's tests, server package and
scripts importable, and a throwaway state folder (telemetry and logs of a run never mix with the
user's, ``paths.state_dir``) unless one is named."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare(name: str) -> None:
    """``name``: the script's, for its state folder's prefix (``bench-warm-state-…``)."""
    for where in (ROOT, ROOT / "server", ROOT / "scripts"):
        sys.path.insert(0, str(where))
    os.environ.setdefault("VLLM_COMPANION_STATE", tempfile.mkdtemp(prefix=f"{name}-state-"))
    os.environ.setdefault("VLLM_COMPANION_TEST_LOG", "warning")
