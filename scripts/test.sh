#!/usr/bin/env bash
# All checks: lint, types, and every test (unit, end to end over stdio, real editors: Neovim,
# Emacs, Vim; real engines), then the VS Code extension (strict TypeScript, unit tests, and a real
# VS Code driven in Chromium).
#   --python-only   skip the extension
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
python_only=0
args=()
for arg in "$@"; do
  if [ "$arg" = "--python-only" ]; then python_only=1; else args+=("$arg"); fi
done
if ! "$VENV/bin/python" -c "import pytest_lsp, vllm, llama_cpp, pynvim, vllm_router" 2>/dev/null \
   || ! command -v emacs >/dev/null || ! command -v vim >/dev/null || ! command -v tmux >/dev/null; then
  bash scripts/setup.sh --tests --llamacpp --editors
fi
if [ "$python_only" = 0 ]; then
  # The extension is built before pytest: tests/real/test_real_vscode.py drives this build in a
  # real VS Code against the real engine (next-edit suggestions).
  (
    cd extension
    npm install --no-audit --no-fund --loglevel=error  # npm ci rejects lockfiles written with omit-lockfile-registry-resolved
    npm run --silent typecheck
    npm test --silent
    bash test/e2e/setup.sh
    npm run --silent package >/dev/null
  )
fi
"$VENV/bin/ruff" check server tests scripts
"$VENV/bin/mypy"
"$VENV/bin/pytest" -q -rs ${args[@]+"${args[@]}"}
[ "$python_only" = 1 ] && exit 0
cd extension
# Artifacts: the .vsix (`vllm-companion editor install vscode --vsix dist/vllm-companion.vsix`) and the wheel.
mkdir -p ../dist && cp vllm-companion.vsix ../dist/
(cd .. && "$VENV/bin/pip" wheel --no-deps --quiet -w dist .)
VLLM_COMPANION_PYTHON="$PWD/../$VENV/bin/python" npm run --silent e2e
