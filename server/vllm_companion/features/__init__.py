"""Thin LSP handlers: unpack params, call domain code, return lsprotocol types (None for nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..server import CompanionServer


def register_all(server: CompanionServer) -> None:
    from . import chat, inline, lifecycle

    lifecycle.register(server)
    inline.register(server)
    chat.register(server)
