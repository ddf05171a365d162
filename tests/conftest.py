"""Shared fixtures: the fake engine, LSP sessions with the real server over real stdio, and
folders of the tests' own.

Every test runs in its own state, cache, runtime and config folders (issue 21, point 8: sessions
without a cache variable made ``$XDG_RUNTIME_DIR/vllm-companion``, and the loop-guard tests wrote
the ``loops.json`` that ``doctor`` then reported): ``own_folders`` points the XDG variables and
``VLLM_COMPANION_STATE`` at fresh folders for each test (``VLLM_COMPANION_CACHE`` unset: a test
that wants it says so), and language-server sessions, CLI runs and engines inherit them. Until the
first test starts (collection, module fixtures) one scratch set stands in. The Hugging Face and
vLLM caches stay where they were (``HF_HOME``, ``VLLM_CACHE_ROOT`` pinned to what they resolved
to): the real-engine tests read the user's models. At the end, ``pytest_sessionfinish`` fails the
run when the user's own folders of this program were created or changed (``tests/homes.py``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import homes  # noqa: E402
from tests.fake_backend import FakeBackend  # noqa: E402

USER_FOLDERS = homes.user_folders()  # before anything below moves them
BEFORE = homes.snapshot(USER_FOLDERS)
homes.pin_third_party_caches()
SCRATCH = homes.scratch_root()
homes.point_at(SCRATCH)


@pytest.fixture(autouse=True)
def own_folders(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This test's state, cache, runtime and config folders (not inside its ``tmp_path``, whose
    listing some tests check)."""
    root = tmp_path_factory.mktemp("home")
    for name, value in homes.folders_under(root).items():
        monkeypatch.setenv(name, value)
    for name in homes.UNSET:
        monkeypatch.delenv(name, raising=False)
    yield root


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test created or changed the user's own folders of this program."""
    touched = homes.changed(BEFORE, homes.snapshot(USER_FOLDERS))
    homes.remove(SCRATCH)
    if touched:
        print("\ntests touched the user's own folders: " + "; ".join(touched), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
async def backend() -> AsyncIterator[FakeBackend]:
    fake = await FakeBackend().start()
    yield fake
    await fake.stop()
