"""The object graph, built in one place: the language server and the command line both use it.

Objects are built here and passed through constructors (tabby-agent's ``server.ts``); each piece
of state has one owner: the documents (``DocumentStore``), the status (``ServerStatus``), the
engine binding (``EngineBinding``), the connection and the endpoint's health (``Health``: the
backend, the served model, availability), the completion cache (``CompletionService``), the
privacy filter (``Privacy``), what became of each suggestion (``Acceptance``, over the local
``EventStore``). ``reconfigure`` applies new settings to each; ``reconnect`` rebuilds only what
depends on the connection, and only when it changed (issue 21, point 1). ``aclose`` ends them in
one place at shutdown, each owner cancelling and awaiting its own tasks.

Once built, what the process holds (modules, settings, this graph: ~125,000 objects, nearly all of
them for the server's life) is frozen out of the garbage collector (``gc.freeze``): a full
collection traversed them all for 60-160 ms with the GIL held, in whichever thread's allocation
triggered it, so a burst of allocations (a 370,000-card model list parsed in its thread) stalled
every request that long. Measured with tests/adversarial/test_connection.py: trivial requests took
up to 0.13-0.26 s before, under 0.1 s after; objects made later are collected as before.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backend import Backend, Connection
from .backend.health import Health
from .chat.service import ChatService
from .completion.service import CompletionService
from .config import Config
from .context import ContextGatherer
from .documents import DocumentStore
from .engine.binding import EngineBinding
from .nextedit.history import EditHistory
from .nextedit.model import BACKSTOP_S, ServedPredictor, trained_next_edit
from .nextedit.service import NextEditService
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
    health: Health
    completions: CompletionService
    chat: ChatService
    binding: EngineBinding
    acceptance: Acceptance
    nextedit: NextEditService

    @property
    def connection(self) -> Connection:
        return self.health.connection

    def reconfigure(self, config: Config) -> None:
        """Apply ``config`` everywhere; the connection is rebuilt only if it changed."""
        self.config = config
        self.privacy.update(extra_globs=config.chat.exclude_globs)
        self.completions.reconfigure(config)
        self.chat.reconfigure(config)
        self.nextedit.reconfigure(config)
        self.binding.configure(config.engine)
        self.status.completions_enabled(config.completion.enabled)
        self.acceptance.enabled = config.completion.telemetry
        self.acceptance.checks_s = tuple(config.completion.survival_checks_s)
        self.reconnect()

    def reconnect(self) -> None:
        """The connection from what decides it (the launched engine, else the user's settings);
        when it changed: a new backend, the served model and cache forgotten, a probe for the
        status; the next-edit process's backend follows the binding too (engine/paired.py). The
        binding calls this when the engine's endpoint (or its next-edit process) arrives or moves.
        Nothing after the shutdown closed the health: the supervisor still runs until
        ``binding.stop`` and may report an endpoint meanwhile (a backend built then leaked)."""
        if self.health.closed:
            return
        connection = Connection.attach(self.config.backend).launched(self.binding.serving())
        self.health.use_next_edit(connection.beside(self.binding.next_edit()))  # a launched next-edit model
        if connection == self.health.connection:
            return
        if connection.same_route(self.health.connection):  # limits only (a repository may tune them)
            self.health.retune(connection)
            return
        self.health.use(Backend(connection))
        self.completions.connected()
        self.health.probe_soon()  # not while the engine's endpoint is still to come (Health.probe)

    async def aclose(self) -> None:
        """The shutdown, in one place: the users of the endpoint first (the completion service's
        prefetches, generations and warm-up), then the health (its probes, recovery, backends;
        ``reconnect`` does nothing after it), then the engine binding and the local store. Each
        owner cancels and awaits its own tasks, so none is left pending at exit, and none fails on
        a client closed under it."""
        await self.completions.aclose()
        await self.health.close()
        await self.binding.stop()
        self.acceptance.close()


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
    binding = EngineBinding(status, on_endpoint=lambda: services.reconnect())  # launch mode: the engine's
    health = Health(Backend(Connection.attach(config.backend)), config.completion.family, status, binding,
                    trained_next_edit)  # a team's front lists the next-edit model too (backend/served.py)
    turns = Turns()  # completion ahead of chat on this server's engine
    context = ContextGatherer(documents, privacy)  # imports, open files, recent edits
    store = events if events is not None else EventStore()  # acceptance events: on this machine only
    completions = CompletionService(config, health, documents, status, loops, privacy, turns, context,
                                    Learner(store).tuned)
    chat = ChatService(config, health, status, loops, documents, privacy, turns)
    acceptance = Acceptance(
        store, documents, config.completion.survival_checks_s, config.completion.telemetry,
        on_accept=lambda item: completions.prefetch(item.uri, item.row, item.col, item.text),
        notice=lambda text: status.tell_user(text, error=False),  # a store that turned itself off
    )
    history = EditHistory(documents, privacy)  # the user's recent edits (next-edit suggestions)
    predictor = ServedPredictor(health, lambda: services.config.nextEdit.family, turns, BACKSTOP_S, loops.record,
                                lambda: services.config.nextEdit.model, binding,  # when it is asked: nextedit/asking.py
                                lambda: services.config.nextEdit.max_tokens)
    nextedit = NextEditService(config, documents, privacy, history, acceptance, predictor)
    services = Services(config, documents, status, privacy, loops, health, completions, chat, binding, acceptance,
                        nextedit)
    gc.freeze()  # what exists now lives as long as the server: no full collection walks it (module doc)
    return services
