"""The LSP edge: the only package that imports pygls or lsprotocol. Handlers unpack params, call
a service, and return lsprotocol types (None for nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import CompanionServer


def register_all(server: CompanionServer) -> None:
    from . import actions, chat, inline, lifecycle, models, nextedit, telemetry

    lifecycle.register(server)
    inline.register(server)
    chat.register(server)
    actions.register(server)
    telemetry.register(server)
    models.register(server)
    nextedit.register(server)
