"""Shared fixtures: the fake engine, and LSP sessions with the real server over real stdio."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_backend import FakeBackend  # noqa: E402


@pytest.fixture
async def backend() -> AsyncIterator[FakeBackend]:
    fake = await FakeBackend().start()
    yield fake
    await fake.stop()
