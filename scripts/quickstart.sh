#!/usr/bin/env bash
# The main job, from nothing: install, start the local engine (vLLM on the CPU when there is no
# GPU), then an inline completion and a streamed chat answer through the language server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${VENV:-.venv}/bin/vllm-companion" demo "$@"
