"""initialize / initialized / configuration / shutdown.

``initialize`` never fails: settings problems are reported to the user once and defaults used.
Settings come from ``initializationOptions``, then ``workspace/configuration`` (section
``vllmCompanion``) after ``initialized``, then ``workspace/didChangeConfiguration``. The last two
are a repository's settings: ``CompanionServer.apply_settings`` passes them through
``settings_trust.from_workspace`` (no say over where code and keys go; privacy lists only grow).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder

from ..privacy import path_of

if TYPE_CHECKING:
    from .server import CompanionServer

log = logging.getLogger(__name__)
SECTION = "vllmCompanion"
CONFIGURATION_TIMEOUT_S = 3.0


def register(server: CompanionServer) -> None:
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(did_change_folders)
    server.feature(types.SHUTDOWN)(shutdown)


def initialize(ls: CompanionServer, params: types.InitializeParams) -> None:
    encoding = ServerCapabilitiesBuilder.choose_position_encoding(params.capabilities)
    ls.encoding = getattr(encoding, "value", encoding)  # the enum's str() is its name, not "utf-16"
    try:
        ls.apply_settings(init_options=params.initialization_options)
    except Exception:  # never let settings break initialize
        log.exception("settings could not be applied; defaults used")
    folders = [f.uri for f in params.workspace_folders or []]
    root = params.root_uri or params.root_path
    ls.services.privacy.update(roots=folders or ([root] if root else []))
    try:
        ls.watch_editor(params.process_id)
    except Exception:
        log.exception("cannot watch the editor process")
    from .inline import register_completion_fallback

    try:
        register_completion_fallback(ls, params.capabilities)
    except Exception:  # e.g. a second initialize: the feature is registered already
        log.exception("completion fallback not registered")


async def initialized(ls: CompanionServer, params: types.InitializedParams) -> None:
    ls.release_status()
    await pull_configuration(ls)
    if ls.services.config.backend.launch:
        ls.spawn(ls.start_engine())
    else:
        ls.spawn(ls.services.health.probe())
    ls.watch_health()


async def did_change_configuration(ls: CompanionServer, params: types.DidChangeConfigurationParams) -> None:
    settings: Any = params.settings
    if isinstance(settings, dict) and isinstance(settings.get(SECTION), dict):
        ls.apply_settings(client_settings=settings[SECTION])
    else:
        await pull_configuration(ls)  # a changed connection is probed again (Services.reconnect)


def did_change_folders(ls: CompanionServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    privacy = ls.services.privacy
    removed = {os.path.realpath(path_of(f.uri)) for f in params.event.removed}
    kept = [str(r) for r in privacy.roots if str(r) not in removed]
    privacy.update(roots=[*kept, *(f.uri for f in params.event.added)])


async def shutdown(ls: CompanionServer, params: None) -> None:
    """LSP ``shutdown``: the server's own background tasks (the health watch, the engine's start,
    the editor watch), then every service's (``Services.aclose``), each cancelled and awaited, so
    ``exit`` finds nothing pending (tests/e2e/test_shutdown.py)."""
    log.info("shutdown: ending the background work")
    await ls.stop_background()
    await ls.services.aclose()


async def pull_configuration(ls: CompanionServer) -> None:
    caps = ls.client_capabilities.workspace
    if not (caps and caps.configuration):
        return
    try:  # a client that never answers must not hold the engine's start or the settings
        items = [types.ConfigurationItem(section=SECTION)]
        request = ls.workspace_configuration_async(types.ConfigurationParams(items=items))
        result = await asyncio.wait_for(request, CONFIGURATION_TIMEOUT_S)
    except Exception as exc:  # a client that cannot answer keeps the settings we have
        log.info("workspace/configuration failed: %s", exc)
        return
    if result and isinstance(result[0], dict):
        ls.apply_settings(client_settings=result[0])
