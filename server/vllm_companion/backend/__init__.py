"""OpenAI-compatible backend client and the one error taxonomy."""

from .client import Backend, ModelInfo
from .connection import Connection
from .errors import BackendError, ErrorKind, classify

__all__ = ["Backend", "BackendError", "Connection", "ErrorKind", "ModelInfo", "classify"]
