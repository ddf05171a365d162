"""OpenAI-compatible backend client and the one error taxonomy."""

from .client import Backend, ModelInfo
from .errors import BackendError, ErrorKind, classify

__all__ = ["Backend", "BackendError", "ErrorKind", "ModelInfo", "classify"]
