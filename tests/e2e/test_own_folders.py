"""A language server under test keeps its files in the test's own folders (issue 21, point 8: a
session without a cache variable made ``$XDG_RUNTIME_DIR/vllm-companion`` and the loop-guard
tests wrote the user's ``loops.json``, which ``doctor`` then reported)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session, wait_for


async def test_a_session_counts_loops_in_the_tests_own_runtime_folder(backend: FakeBackend, own_folders: Path) -> None:
    backend.script = [Reply(chunks=["total = 0\n"], loop="    total += price(item)\n", delay_s=0.002)]
    store = own_folders / "run" / "vllm-companion" / "loops.json"
    async with session(options(backend.url, maxTokens=4096, maxLines=500)) as client:
        uri, pos = open_doc(client, "def f(items):\n    █\n")
        await asyncio.wait_for(inline(client, uri, pos), 5)
        await wait_for(store.exists)
    assert sum(json.loads(store.read_text()).values()) == 1
    assert store.stat().st_mode & 0o777 == 0o600
