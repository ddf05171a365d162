"""Shared fixtures: the fake engine, and LSP sessions with the real server over real stdio."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_backend import FakeBackend  # noqa: E402

# Acceptance telemetry of the servers under test goes to a scratch folder, not the user's own store
# (and what a user accepted never tunes a test's completions).
os.environ["VLLM_COMPANION_STATE"] = tempfile.mkdtemp(prefix="vllm-companion-state-")


@pytest.fixture
async def backend() -> AsyncIterator[FakeBackend]:
    fake = await FakeBackend().start()
    yield fake
    await fake.stop()
