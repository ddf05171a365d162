#!/usr/bin/env bash
# The main job, from nothing: install, start the local engine (vLLM on the CPU when there is no
# GPU), then an inline completion and a streamed chat answer through the language server.
# At the end it names the one command that installs the editor side (it never runs it unasked:
# stdin may not be a terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
"$VENV/bin/vllm-companion" demo "$@"
companion="$(cd "$VENV/bin" && pwd)/vllm-companion"
for editor in code codium code-server; do
  if command -v "$editor" >/dev/null 2>&1; then
    echo
    echo "Found $editor. To use vLLM Companion in it (builds the extension: Node.js >= 22), run:"
    echo "  $companion editor install vscode"
    break
  fi
done
for editor in nvim emacs; do
  if command -v "$editor" >/dev/null 2>&1; then
    echo "For $editor, this prints the config lines: $companion editor install $editor"
  fi
done
