"""Engine start-up shown in the editor: a work-done progress (server-initiated) and the status.

Long model loads (minutes on first download) show as a progress notification with percentages
parsed from the engine's own output; clients without work-done progress get the status only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from ..engine.supervised import EngineEvent, EngineState

if TYPE_CHECKING:
    from .server import CompanionServer

log = logging.getLogger(__name__)
TOKEN = "vllmCompanion/engine"


class EngineProgress:
    def __init__(self, server: CompanionServer) -> None:
        self.server = server
        self.active = False

    async def begin(self) -> None:
        caps = self.server.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return
        try:
            await self.server.work_done_progress.create_async(TOKEN)
        except Exception as exc:  # the client may refuse: the status still shows the engine
            log.info("work-done progress refused: %s", exc)
            return
        self.server.work_done_progress.begin(
            TOKEN, types.WorkDoneProgressBegin(title="vLLM Companion: starting the engine", percentage=0)
        )
        self.active = True

    def report(self, event: EngineEvent) -> None:
        if not self.active:
            return
        if event.state in (EngineState.READY, EngineState.FAILED, EngineState.STOPPED):
            self.server.work_done_progress.end(TOKEN, types.WorkDoneProgressEnd(message=event.message[:200]))
            self.active = False
            return
        self.server.work_done_progress.report(
            TOKEN, types.WorkDoneProgressReport(message=event.message[:200], percentage=event.percent)
        )
