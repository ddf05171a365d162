"""The language server: the LSP edge around the services that ``app.build`` wires.

Handlers (this package, one module per area) parse params, call a service and convert the
result; everything that imports pygls or lsprotocol lives in this package (a test reads the
imports). The server keeps only what is about the editor's connection: the position encoding,
the settings sources it merges, its background tasks, and the editor process it watches. The
engine's endpoint is no settings source: the binding hands it to the app (``Services.reconnect``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Mapping
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..app import Services, build
from ..config import env_overrides, load_config
from ..documents import UTF16
from ..engine.procs import ProcessId
from ..logs import stop_logging
from ..repetition import loop_store
from ..settings_trust import from_workspace, ignored_message
from .progress import EngineProgress
from .protocol import CompanionProtocol
from .transport import serve_stdio

log = logging.getLogger(__name__)
EDITOR_POLL_S = 2.0
EXIT_GRACE_S = 15.0


class CompanionServer(LanguageServer):
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(
            "vllm-companion",
            __version__,
            protocol_cls=CompanionProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.encoding = UTF16
        self._env = env_overrides(environ)
        self._init_options: dict[str, Any] = {}
        self._client_settings: dict[str, Any] = {}
        self._told_ignored: set[str] = set()  # workspace keys the user was told are ignored
        self.initialized_seen = False  # the editor has initialize's answer: notifications may go
        self._held_status: tuple[str, dict[str, Any]] | None = None
        config, _ = load_config(self._env)  # problems are reported by apply_settings at initialize
        self.services: Services = build(config, self._send_status, self._show_message, loop_store())
        self._tasks: set[asyncio.Task[Any]] = set()
        from . import register_all

        register_all(self)

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """pygls's stdio server with a bounded reader that answers every bad message (transport.py)."""
        serve_stdio(self, stdin, stdout)

    # -- configuration -------------------------------------------------------------------------
    def apply_settings(self, init_options: Any = None, client_settings: Any = None) -> list[str]:
        """Merge a new source of settings in; every service gets the result. ``client_settings``
        (workspace/configuration, didChangeConfiguration) is a repository's: ``from_workspace``."""
        if isinstance(init_options, Mapping):
            self._init_options = dict(init_options)
        ignored: list[str] = []
        refused: list[str] = []  # workspace values over their bounds
        if isinstance(client_settings, Mapping):
            user, _ = load_config(self._env, self._init_options)
            self._client_settings, ignored, refused = from_workspace(client_settings, user)
        config, problems = load_config(self._env, self._init_options, self._client_settings)
        problems = self._news(ignored) + refused + problems
        self.services.reconfigure(config)
        if config.log.level:
            logging.getLogger("vllm_companion").setLevel(config.log.level.upper())
        for problem in problems:
            log.warning("%s", problem)
        if problems:
            self.services.status.tell_user("vLLM Companion settings: " + "; ".join(problems), error=False)
        return problems

    def _news(self, ignored: list[str]) -> list[str]:
        """The ignored workspace keys the user has not been told about yet (told once per key)."""
        new = [key for key in dict.fromkeys(ignored) if key not in self._told_ignored]
        self._told_ignored.update(new)
        return [ignored_message(new)] if new else []

    # -- background work -----------------------------------------------------------------------
    def spawn(self, coro: Any) -> None:
        """Run a background coroutine; its failure is logged, never raised into a request."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def stop_background(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task failed: %s", task.exception())

    # -- local engine ---------------------------------------------------------------------------
    async def start_engine(self) -> None:
        """backend.launch: attach to or start the local engine, reporting progress to the editor."""
        progress = EngineProgress(self)
        self.services.binding.listeners.append(progress.report)
        await progress.begin()
        await self.services.binding.start(self.services.config.engine)

    def watch_health(self) -> None:
        """Attach mode: the health checks the endpoint every ``backend.healthIntervalS``."""
        self.spawn(self.services.health.watch(lambda: self.services.config.backend.health_interval_s))

    # -- the editor's end is ours ----------------------------------------------------------------
    def watch_editor(self, process_id: int | None) -> None:
        """Exit cleanly (releasing the engine) on SIGTERM/SIGHUP, and when the editor's process
        from ``initialize`` is gone, as the LSP spec asks of servers (``processId``)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig.name)
        editor = ProcessId.of(process_id) if isinstance(process_id, int) else None
        if editor is not None:
            self.spawn(self._watch_process(editor))

    def _on_signal(self, name: str) -> None:
        self.spawn(self.exit_now(f"got {name}"))

    async def _watch_process(self, editor: ProcessId) -> None:
        while editor.alive():  # noqa: ASYNC110 - not our child: nothing to await but time
            await asyncio.sleep(EDITOR_POLL_S)
        await self.exit_now(f"the editor (pid {editor.pid}) is gone")

    async def exit_now(self, why: str) -> None:
        log.warning("exiting: %s", why)
        try:
            await asyncio.wait_for(self.services.binding.stop(), EXIT_GRACE_S)
        except Exception:  # leaving is what matters; the engine's guard stops an orphan anyway
            log.exception("engine release failed on exit")
        stop_logging()  # os._exit skips atexit: the queued lines are written first (logs.py)
        os._exit(0)

    # -- outgoing ------------------------------------------------------------------------------
    def _send_status(self, method: str, params: dict[str, Any]) -> None:
        """Before the editor has initialize's answer LSP 3.17 allows only window/* messages and
        telemetry: the latest status waits for ``initialized`` (``release_status``)."""
        if not self.initialized_seen:
            self._held_status = (method, params)
            return
        self.protocol.notify(method, params)

    def release_status(self) -> None:
        self.initialized_seen = True
        if self._held_status is not None:
            self.protocol.notify(*self._held_status)
            self._held_status = None

    def _show_message(self, text: str, error: bool) -> None:
        kind = types.MessageType.Error if error else types.MessageType.Warning
        self.window_show_message(types.ShowMessageParams(type=kind, message=text))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Out-of-band errors: a body that is not JSON gets a ParseError answer; all are logged."""
        if isinstance(error, json.JSONDecodeError):
            protocol = self.protocol
            if isinstance(protocol, CompanionProtocol):
                protocol.answer_parse_error(str(error))
        # An error answer the client got (invalid params, a failed request whose cause the service
        # logged where it happened) is no server error: one line at debug. A bug is (logs.py).
        answered = isinstance(error, JsonRpcException) and not isinstance(error, JsonRpcInternalError)
        log.log(logging.DEBUG if answered else logging.ERROR, "server error (%s): %s",
                getattr(source, "__name__", source), error)
