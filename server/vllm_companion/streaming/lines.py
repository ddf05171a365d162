"""Line normalisation shared by the loop detectors."""

from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def normalize(line: str) -> str:
    """Compare lines ignoring indentation, inner spacing and a trailing comma/semicolon."""
    return _SPACES.sub(" ", line.strip()).rstrip(",;")


def skeleton(line: str) -> str:
    """``normalize`` with every number replaced by ``#`` (``x1 = 1`` and ``x2 = 2`` share one)."""
    return _NUMBER.sub("#", normalize(line))


_LITERAL = r"""(?:'[^']*'|"[^"]*"|b'[^']*'|[-+]?(?:0[xXbBoO])?[\w.]+)"""
_DATA = re.compile(rf"^[(\[{{]*\s*{_LITERAL}(?:\s*[,:]\s*{_LITERAL})*\s*[)\]}}]*[,;]?$")


def is_data(normalized: str) -> bool:
    """A row of literals (``'a+-b',``, ``0x00, 0x01,``, ``("x", 1),``): tables repeat such rows."""
    return bool(_DATA.match(normalized)) and not normalized.endswith(":")


def numbers(line: str) -> list[str]:
    return _NUMBER.findall(line)
