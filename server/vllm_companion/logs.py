"""Logging to stderr or a file, never stdout (stdout is the LSP channel).

Lines carry the request id (``[c12]``) and per-stage timings where the code logs them.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "info", file: str | None = None) -> None:
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("vllm_companion").setLevel(level.upper())
