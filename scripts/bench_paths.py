"""What a benchmark script sets up before its imports, in one place: the checkout's tests, server
package and scripts importable (``importable``), and for a script that runs language servers or
engines a throwaway state folder too (``prepare``: telemetry and logs of a run never mix with the
user's, ``paths.state_dir``) unless one is named.

Each script imports this first (``python scripts/bench_x.py`` puts ``scripts/`` on the path):
``from bench_paths import prepare`` then ``prepare("bench-x")``, its other imports after it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def importable() -> None:
    """The checkout's ``tests``, ``vllm_companion`` (from ``server/``) and ``scripts`` modules."""
    for where in (ROOT, ROOT / "server", ROOT / "scripts"):
        if str(where) not in sys.path:
            sys.path.insert(0, str(where))


def prepare(name: str) -> None:
    """``importable``, and, when run as a script, a state folder of the run's own: ``name`` is the
    script's, for the folder's prefix (``bench-warm-state-…``). A test that imports a script keeps
    its own environment (setting it here leaked one state folder and log level into every later
    test of the session)."""
    importable()
    main = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    if Path(main).resolve().parent != ROOT / "scripts":
        return  # imported by a test: the importer's environment is not ours to change
    os.environ.setdefault("VLLM_COMPANION_STATE", tempfile.mkdtemp(prefix=f"{name}-state-"))
    os.environ.setdefault("VLLM_COMPANION_TEST_LOG", "warning")
