"""The object graph, built in one place: the language server and the command line both use it.

Objects are built here and passed through constructors (tabby-agent's ``server.ts``); each piece
of state has one owner: the documents (``DocumentStore``), the status (``ServerStatus``), the
engine binding (``EngineBinding``), the backend for the current settings (``Services.backend``),
the completion cache (``CompletionService``), the privacy filter (``Privacy``), what became of each
suggestion (``Acceptance``, over the local ``EventStore``).
``reconfigure`` applies new settings to all of them at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backend import Backend
from .chat.service import ChatService
from .completion.service import CompletionService
from .config import Config
from .context import ContextGatherer
from .documents import DocumentStore
from .engine.binding import EngineBinding
from .privacy import Privacy
from .repetition import LoopHealth
from .status import ServerStatus, StatusReporter
from .telemetry import Acceptance, EventStore
from .telemetry.tuning import Learner
from .turns import Turns

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    documents: DocumentStore
    status: ServerStatus
    privacy: Privacy
    loops: LoopHealth
    backend: Backend
    completions: CompletionService
    chat: ChatService
    binding: EngineBinding
    acceptance: Acceptance

    def reconfigure(self, config: Config) -> Backend | None:
        """Apply ``config`` everywhere; returns the replaced backend (to close), if any."""
        old = None
        if config.backend != self.config.backend:
            old, self.backend = self.backend, Backend(config.backend)
        self.config = config
        self.privacy.update(extra_globs=config.chat.exclude_globs)
        self.completions.reconfigure(config, self.backend)
        self.chat.reconfigure(config, self.backend)
        self.binding.configure(config.engine)
        self.status.completions_enabled(config.completion.enabled)
        self.acceptance.enabled = config.completion.telemetry
        self.acceptance.checks_s = tuple(config.completion.survival_checks_s)
        return old


def build(
    config: Config,
    notify: Callable[[str, dict[str, Any]], None],
    show: Callable[[str, bool], None],
    loop_store: Path | None = None,
    events: EventStore | None = None,
) -> Services:
    """Everything a server (or ``vllm-companion complete``) needs, wired."""
    status = ServerStatus(StatusReporter(notify, show))
    documents = DocumentStore()
    privacy = Privacy(config.chat.exclude_globs)
    loops = LoopHealth(store=loop_store, on_loop=lambda model, total: status.loops(total))
    backend = Backend(config.backend)
    binding = EngineBinding(status)
    turns = Turns()  # completion ahead of chat on this server's engine
    context = ContextGatherer(documents, privacy)  # imports, open files, recent edits
    completions = CompletionService(config, backend, documents, status, loops, privacy, turns, context)
    completions.gate = lambda: binding.ready
    chat = ChatService(config, backend, status, loops, documents, privacy, completions.outcome, turns)
    store = events or EventStore()  # acceptance events: on this machine only
    acceptance = Acceptance(store, documents, config.completion.survival_checks_s)
    acceptance.enabled = config.completion.telemetry
    acceptance.on_accept = lambda item: completions.prefetch(item.uri, item.row, item.col, item.text)
    acceptance.notice = lambda text: status.tell_user(text, error=False)  # a store that turned itself off
    completions.learned = Learner(store).tuned
    return Services(config, documents, status, privacy, loops, backend, completions, chat, binding, acceptance)
