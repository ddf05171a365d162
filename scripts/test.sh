#!/usr/bin/env bash
# All checks: lint, types, and every test (unit, end to end over stdio, real engines).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if ! "$VENV/bin/python" -c "import pytest_lsp, vllm, llama_cpp" 2>/dev/null; then
  bash scripts/setup.sh --tests --llamacpp
fi
"$VENV/bin/ruff" check server tests scripts
"$VENV/bin/mypy"
"$VENV/bin/pytest" -q -rs "$@"
