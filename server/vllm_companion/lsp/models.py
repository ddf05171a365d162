"""The model picker at the edge: ``vllmCompanion/models`` and ``vllmCompanion/didChangeModel``.

- ``vllmCompanion/models`` (request, no params) answers ``{served: [{id, maxModelLen}], current,
  alternatives: [{model, why, needsRestart: true}], truncated, error?}``: what the endpoint lists
  (``backend/listing.py``, bounded in time and bytes, never failing: ``error`` says why ``served``
  is empty) and, when this server launched the engine, the launch plan's other candidates that fit
  the GPUs (``engine/planning/alternatives.py``). docs/protocol.md has the shapes.
- ``vllmCompanion/didChangeModel`` (notification) ``{backend?: {model}, chat?: {model}}``: the
  user picked another served model. ``backend.model`` and ``chat.model`` are user-only settings
  (settings_trust.py): a repository's ``workspace/configuration`` answer never changes them, so
  without this the pick would wait for a server restart. It comes from the same place as
  ``initializationOptions`` (the editor's client, which in VS Code sends the user's own value:
  extension/src/models.ts) and is applied like them; it carries these two keys only: the endpoint,
  the key and every ``engine.*`` setting still need a restart.

The alternatives' cache (GPUs read once) is the one piece of state here; it is built once per
server in ``register`` and lives as long as the handlers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..backend.health import NOT_READY
from ..backend.listing import MAX_ID_CHARS, Listing, served_models
from ..engine.planning.alternatives import Alternatives

if TYPE_CHECKING:
    from .server import CompanionServer

log = logging.getLogger(__name__)
MODELS, DID_CHANGE_MODEL = "vllmCompanion/models", "vllmCompanion/didChangeModel"
_UNSET = object()


PICK_SETTLE_S = 0.1  # a burst of picks is applied once, after this quiet time: the latest wins


class Picks:
    """Coalesces ``didChangeModel``: each apply rebuilds the settings and probes the endpoint,
    so 2,000 notifications in a row left the server unanswering for minutes; now a burst costs
    one apply, and a pick equal to the current models costs none."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], str | None] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, ls: CompanionServer, changed: dict[tuple[str, str], str | None]) -> None:
        self.pending.update(changed)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._apply(ls))

    async def _apply(self, ls: CompanionServer) -> None:
        await asyncio.sleep(PICK_SETTLE_S)
        changed, self.pending = self.pending, {}
        current = ls._init_options
        if any(_get(current.get(section), key) != value for (section, key), value in changed.items()):
            use_models(ls, changed)


def register(server: CompanionServer) -> None:
    alternatives = Alternatives()
    picks = Picks()

    @server.feature(MODELS)
    async def models(ls: CompanionServer, params: Any) -> dict[str, Any]:
        return await answer(ls, alternatives)

    @server.feature(DID_CHANGE_MODEL)
    def did_change_model(ls: CompanionServer, params: Any) -> None:
        changed = picked(params)
        if changed:
            picks.add(ls, changed)


async def answer(ls: CompanionServer, alternatives: Alternatives) -> dict[str, Any]:
    services = ls.services
    pending = services.health.connection.engine_pending  # launch mode, no engine yet: nothing to ask
    listing = Listing(error=NOT_READY) if pending else await served_models(services.health.backend)
    binding = services.binding
    plan = binding.manager.plan if binding.launch and binding.manager is not None else None
    others = await alternatives.for_plan(plan)
    served = services.health.served
    current = served.id if served is not None else services.connection.model
    if current is None and listing.models:
        current = listing.models[0].id  # what the backend will pick: the endpoint's first
    out: dict[str, Any] = {
        "served": [{"id": m.id, "maxModelLen": m.max_model_len} for m in listing.models],
        "current": current,
        "chatModel": services.config.chat.model,
        "alternatives": [{"model": a.model, "why": a.why, "needsRestart": True} for a in others],
        "truncated": listing.truncated,
    }
    if listing.error is not None:
        out["error"] = listing.error
    return out


def picked(params: Any) -> dict[tuple[str, str], str | None]:
    """``{(section, "model"): id or None}`` for each valid key present; anything else is ignored
    (a notification has no answer to carry an error)."""
    out: dict[tuple[str, str], str | None] = {}
    for section in ("backend", "chat"):
        value = _get(_get(params, section), "model")
        if value is _UNSET:
            continue
        if value is None or (isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and value.isprintable()):
            out[(section, "model")] = value
        else:
            log.info("%s ignored: %s.model must be a model id or null", DID_CHANGE_MODEL, section)
    return out


def _get(data: Any, name: str) -> Any:
    """``data[name]`` when ``data`` is an object (custom params come as parsed: lsp/protocol.py);
    ``_UNSET`` when absent (None is a value here: "unset the setting")."""
    return data.get(name, _UNSET) if isinstance(data, dict) else _UNSET


def use_models(ls: CompanionServer, changed: dict[tuple[str, str], str | None]) -> None:
    """The user's own options with the picked models in them; the backend re-reads its model."""
    options = {key: dict(value) if isinstance(value, dict) else value for key, value in ls._init_options.items()}
    for (section, key), value in changed.items():
        part = options.get(section)
        part = dict(part) if isinstance(part, dict) else {}
        if value is None:
            part.pop(key, None)
        else:
            part[key] = value
        options[section] = part
    ls.apply_settings(init_options=options)  # a new model: a new connection, probed (Services.reconnect)
