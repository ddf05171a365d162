"""The models an endpoint serves (``GET /v1/models``), bounded, for the editor's model picker.

``Backend.served_model`` reads the same list to pick *one* model (for backend/health.py); the
picker needs the whole list, from any endpoint the user attached to (a gateway may list hundreds, a
hostile one 100,000 or ids of a megabyte), so this reads it with the backend's own HTTP client
under hard bounds: one timeout for the whole exchange, at most ``MAX_LIST_BYTES`` of body, parsed
and checked in a thread (a body nested 100,000 deep raises RecursionError there, caught), at most
``MAX_CARDS`` cards looked at and ``MAX_SERVED`` distinct models kept, ids that are not plain text
of at most ``MAX_ID_CHARS`` dropped (a cut id would name a model that does not exist).

The thread alone did not keep the event loop free: 4 MiB of ``{"id": "a"}`` (370,000 cards) cost
0.2 s of checks and deduplication on the loop, and ``json.loads`` is one C call that held the GIL
~80 ms and built 370,000 dicts (~100 MB, freed in one more uninterruptible step). Now the checks
run in the thread too, on the first ``MAX_CARDS`` cards only, and the parse calls back into Python
for each object (``_Objects``), where the interpreter hands the GIL to the event loop's thread
every switch interval (5 ms; the longest hold measured fell from 80 ms to under 10 ms, the parse
took 0.18 s instead of 0.13 s), and builds no more than ``MAX_OBJECTS`` of them. Measured by
tests/adversarial/test_connection.py (a trivial request answered within 100 ms throughout).
What the parser builds between two objects is not interruptible (one object of 400,000 keys, 1.4 M
empty lists, 2 M lists nested 100 deep): a byte scan counts it first and refuses a list of over
``MAX_VALUES`` (``_values``; tests/adversarial/test_models.py).
OpenAI's shape: https://platform.openai.com/docs/api-reference/models/list; vLLM adds
``max_model_len`` to each card.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from .client import MAX_CONTEXT, PROBE_TIMEOUT_S, Backend
from .errors import BackendError, ErrorKind, classify, status_error

MAX_LIST_BYTES = 4 << 20  # OpenRouter's catalogue, descriptions and all, is ~1.5 MB
MAX_SERVED = 1000  # a gateway's catalogue (OpenRouter lists ~300); the model in use is looked up here too
MAX_CARDS = 4 * MAX_SERVED  # cards looked at: room for unusable ones and repeats among the kept
MAX_OBJECTS = 16 * MAX_SERVED  # JSON objects built: a card and the few objects nested in it (vLLM: 2)
MAX_ID_CHARS = 256  # ids longer than this are dropped, the chosen one too
MAX_VALUES = 64 * MAX_SERVED  # values the parser builds between two objects (``_values``): a rich card has ~50
SCAN_BYTES = 256 << 10  # one step of the pre-scan (~0.1 ms), the GIL free between steps
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Served:
    id: str
    max_model_len: int | None


@dataclass
class Listing:
    models: list[Served] = field(default_factory=list)
    truncated: bool = False  # over MAX_SERVED usable models listed, or MAX_CARDS cards, or MAX_OBJECTS objects
    error: str | None = None  # why the list is empty (the endpoint down, refused, hostile)


async def served_models(backend: Backend) -> Listing:
    """The endpoint's models, or an empty listing that says why (never raises: the picker still
    shows the launch plan's alternatives when the engine is down)."""
    try:
        return await fetch_models(backend, min(PROBE_TIMEOUT_S, backend.connection.first_token_timeout_s))
    except BackendError as exc:
        return Listing(error=exc.message[:MAX_ERROR_CHARS])


async def fetch_models(backend: Backend, timeout_s: float) -> Listing:
    """The endpoint's models within ``timeout_s``; a classified ``BackendError`` otherwise (an
    endpoint down, refusing the key, too slow, or sending what is not a model list)."""
    try:
        async with asyncio.timeout(timeout_s):
            body = await _get(backend)
        return await asyncio.to_thread(_parse, body)  # off the event loop: module doc
    except Exception as exc:  # every failure leaves classified
        raise classify(exc) from exc


async def _get(backend: Backend) -> bytes:
    """The body of ``GET {endpoint}/models`` (the connection's client: its key, headers, session id)."""
    http = backend._http  # the backend's own client (same package)
    async with http.stream("GET", backend.endpoint + "/models") as response:
        data = bytearray()
        async for piece in response.aiter_bytes():
            data += piece
            if len(data) > MAX_LIST_BYTES:
                raise BackendError(ErrorKind.SERVER, f"the endpoint's model list is over {MAX_LIST_BYTES >> 20} MiB")
        if response.status_code != 200:
            raise status_error(response.status_code, bytes(data[:65536]).decode("utf-8", "replace"))
    return bytes(data)


def _parse(body: bytes) -> Listing:
    """The listing in ``body`` (run in a thread: module doc)."""
    values = _values(body)
    if values > MAX_VALUES:
        raise BackendError(ErrorKind.SERVER, f"the endpoint's model list has over {MAX_VALUES:,} keys and list items "
                           "(other than objects): not a model list")
    objects = _Objects()
    try:
        data = json.loads(body, object_pairs_hook=objects.made)
    except (ValueError, RecursionError) as exc:
        raise BackendError(ErrorKind.SERVER, "the endpoint's model list is not JSON") from exc
    cards = data.get("data") if isinstance(data, dict) else None
    if not isinstance(cards, list):
        raise BackendError(ErrorKind.SERVER, "the endpoint's model list has no data array")
    listing = _listing(cards[:MAX_CARDS])
    listing.truncated |= len(cards) > MAX_CARDS or objects.left < 0
    return listing


def _values(body: bytes) -> int:
    """At least the number of values ``json.loads`` would build without calling back into Python.

    The parser calls ``_Objects.made`` at the end of every object (the GIL can pass there), but
    nothing else: the members of one object and the items of a list are built in one C step. One
    object of 400,000 keys held the GIL ~140 ms, 1.4 M empty lists 42 ms (docs/security.md). Each
    such value but a container's first follows a comma; a comma followed by ``{`` (or ``, {``)
    opens an object, which calls back. So commas less those is an upper bound (a comma or ``,{``
    inside a string only adds to it; one split between two steps is counted as a value), read in
    steps of ``SCAN_BYTES`` so the scan itself never holds the GIL long. A list's first item
    follows no comma: each ``[`` counts one more, else 20,866 lists nested 100 deep (4 MiB) counted
    20,866 and built 2 M lists in one 1.2 s step (tests/adversarial/test_models.py). 370,000 cards
    of ``{"id": "a"}`` count 1; deep nesting is refused here or is the parser's RecursionError."""
    count = 0
    for start in range(0, len(body), SCAN_BYTES):
        end = start + SCAN_BYTES
        commas = body.count(b",", start, end) - body.count(b",{", start, end) - body.count(b", {", start, end)
        count += commas + body.count(b"[", start, end)
    return count


class _Objects:
    """The parse's objects (module doc): each one a Python call inside ``json.loads``, where the GIL
    can pass to the event loop's thread; past ``MAX_OBJECTS``, None instead of a dict (a card
    dropped), but for an object holding ``data`` (the list's own, which the parser ends with)."""

    def __init__(self) -> None:
        self.left = MAX_OBJECTS

    def made(self, pairs: list[tuple[str, Any]]) -> dict[str, Any] | None:
        self.left -= 1
        if self.left >= 0 or any(key == "data" for key, _ in pairs):
            return dict(pairs)
        return None


def _listing(cards: list[Any]) -> Listing:
    """The usable models among ``cards``, each once, at most ``MAX_SERVED``."""
    out: list[Served] = []
    seen: set[str] = set()
    for card in cards:
        served = _served(card)
        if served is None or served.id in seen:
            continue
        if len(out) == MAX_SERVED:
            return Listing(out, truncated=True)
        seen.add(served.id)
        out.append(served)
    return Listing(out)


def _served(card: Any) -> Served | None:
    """One card as a model the user can pick, or None (no id, an id that is not plain text)."""
    if not isinstance(card, dict):
        return None
    model = card.get("id")
    if not isinstance(model, str) or not 0 < len(model) <= MAX_ID_CHARS or not model.isprintable():
        return None
    length = card.get("max_model_len")
    ok = type(length) is int and 0 < length <= MAX_CONTEXT
    return Served(model, length if ok else None)
