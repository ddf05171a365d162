"""Shared pieces for the real-editor tests: the fake engine on a thread of its own (the editor
drivers block), the editors' binaries, and the rule that a missing editor fails under
VLLM_COMPANION_REQUIRE_EDITORS=1 (CI) and is skipped otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_backend import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def need(binary: str, install: str) -> str:
    path = shutil.which(binary) or (str(Path(PYTHON).parent / binary) if (Path(PYTHON).parent / binary).exists()
                                    else None)
    if path is None:
        if os.environ.get("VLLM_COMPANION_REQUIRE_EDITORS") == "1":
            pytest.fail(f"{binary} is not installed but VLLM_COMPANION_REQUIRE_EDITORS=1 ({install})")
        pytest.skip(f"{binary} not installed ({install})")
    return path


@contextlib.contextmanager
def fake_engine() -> Iterator[FakeBackend]:
    """A FakeBackend serving from its own event loop thread; its records are read from here."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = asyncio.run_coroutine_threadsafe(FakeBackend().start(), loop).result(10)
    fake.loop = loop  # type: ignore[attr-defined]
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def until(predicate: Callable[[], Any], timeout: float = 15.0, every: float = 0.1) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def server_options(url: str, **completion: Any) -> dict[str, Any]:
    return {"backend": {"endpoint": url}, "completion": {"debounceMs": 0, **completion}}
