"""The language server: the one place where the object graph is built.

Dependencies are passed through constructors (config -> backend -> services); the server object is
the only singleton. Handlers live in ``features/`` and stay thin.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import signal
from collections.abc import Mapping
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from . import __version__
from .backend import Backend
from .chat.service import ChatService
from .completion.service import CompletionService
from .config import Config, env_overrides, load_config, without_machine_only
from .documents import UTF16, DocumentStore
from .engine.manager import EngineManager
from .engine.procs import ProcessId
from .engine.progress import ENGINE_STATUS, EngineProgress
from .engine.registry import runtime_dir
from .engine.supervisor import EngineEvent, EngineState
from .health import LoopHealth
from .privacy import Privacy
from .protocol import CompanionProtocol
from .status import State, StatusReporter

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
        self.documents = DocumentStore()
        self._env = env_overrides(environ)
        self._init_options: dict[str, Any] = {}
        self._client_settings: dict[str, Any] = {}
        self.config, _ = load_config(self._env)  # problems are reported by apply_settings at initialize
        self.status = StatusReporter(self._send_status, self._show_message)
        self.privacy = Privacy(self.config.chat.exclude_globs)
        self.backend = Backend(self.config.backend)
        self.health = LoopHealth(
            store=runtime_dir() / "loops.json", on_loop=lambda model, total: self.status.update(loop_events=total)
        )
        self.completions = CompletionService(
            self.config, self.backend, self.documents, self.status, self.health, self.privacy
        )
        self.chat = ChatService(self.config, self.backend, self.status, self.health)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.engine: EngineManager | None = None
        self._progress: EngineProgress | None = None
        self._engine_backend: dict[str, Any] = {}  # endpoint/model of the launched engine
        self.completions.gate = self.engine_ready
        from .features import register_all

        register_all(self)

    # -- configuration -------------------------------------------------------------------------
    def apply_settings(self, init_options: Any = None, client_settings: Any = None) -> list[str]:
        """Merge a new source of settings in; rebuild the backend if its settings changed."""
        if isinstance(init_options, Mapping):
            self._init_options = dict(init_options)
        dropped: list[str] = []
        if isinstance(client_settings, Mapping):
            self._client_settings, dropped = without_machine_only(client_settings)
        config, problems = load_config(
            self._env, self._init_options, self._client_settings, {"backend": self._engine_backend}
        )
        problems = dropped + problems
        self._reconfigure(config)
        for problem in problems:
            log.warning("%s", problem)
        if problems:
            self.status.tell_user("vLLM Companion settings: " + "; ".join(problems), error=False)
        return problems

    def _reconfigure(self, config: Config) -> None:
        old = self.backend
        if config.backend != self.config.backend:
            self.backend = Backend(config.backend)
            self.spawn(old.close())
        self.config = config
        self.privacy.update(extra_globs=config.chat.exclude_globs)
        self.completions.reconfigure(config, self.backend)
        self.chat.reconfigure(config, self.backend)
        if self.engine is not None:
            self.engine.settings = config.engine
        if not config.completion.enabled:
            self.status.update(State.DISABLED, message="completions are disabled")
        if config.log.level:
            _set_log_level(config.log.level)

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
    def engine_ready(self) -> bool:
        return not self.config.backend.launch or bool(self._engine_backend)

    async def start_engine(self) -> None:
        """backend.launch: attach to or start the local engine, reporting progress to the editor."""
        self.engine = EngineManager(self.config.engine, self._engine_event, self._engine_endpoint)
        atexit.register(self.engine.release_sync)
        self._progress = EngineProgress(self)
        await self._progress.begin()
        await self.engine.acquire()

    def _engine_event(self, event: EngineEvent) -> None:
        state = ENGINE_STATUS[event.state]
        self.status.update(state, message=event.message[:300], engine=event.state.value)
        if self._progress is not None:
            self._progress.report(event)
        if event.state is EngineState.FAILED:
            self.status.tell_user(f"vLLM Companion engine: {event.message}")
        elif event.state is EngineState.RESTARTING:
            self.status.tell_user(f"vLLM Companion engine: {event.message}", error=False)

    def _engine_endpoint(self, endpoint: str, model: str, api_key: str | None) -> None:
        self._engine_backend = {"endpoint": endpoint, "model": model, "apiKey": api_key}
        self.apply_settings()
        self.spawn(self.probe_backend())

    async def stop_engine(self) -> None:
        if self.engine is not None:
            await self.engine.release()
            atexit.unregister(self.engine.release_sync)
            self.engine = None

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
            await asyncio.wait_for(self.stop_engine(), EXIT_GRACE_S)
        except Exception:  # leaving is what matters; the engine's guard stops an orphan anyway
            log.exception("engine release failed on exit")
        os._exit(0)

    async def watch_health(self) -> None:
        """Attach mode: check the endpoint every ``backend.healthIntervalS`` so the status bar
        follows it even while nobody types (the launch mode has its supervisor for this)."""
        while True:
            await asyncio.sleep(self.config.backend.health_interval_s)
            if not self.config.backend.launch:
                await self.probe_backend()

    async def probe_backend(self) -> None:
        """Contact the engine once at start so the status bar shows its health straight away."""
        from .backend import BackendError

        self.backend.forget_model()
        try:
            await self.completions.probes.model_and_family()
        except BackendError as exc:
            self.completions.failed(exc)

    # -- outgoing ------------------------------------------------------------------------------
    def _send_status(self, method: str, params: dict[str, Any]) -> None:
        self.protocol.notify(method, params)

    def _show_message(self, text: str, error: bool) -> None:
        kind = types.MessageType.Error if error else types.MessageType.Warning
        self.window_show_message(types.ShowMessageParams(type=kind, message=text))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Out-of-band errors: a body that is not JSON gets a ParseError answer; all are logged."""
        if isinstance(error, json.JSONDecodeError):
            protocol = self.protocol
            if isinstance(protocol, CompanionProtocol):
                protocol.answer_parse_error(str(error))
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)


def _set_log_level(level: str) -> None:
    logging.getLogger("vllm_companion").setLevel(level.upper())
