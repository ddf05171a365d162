"""Where the front (engine/front.py) sends a team member's request: the completion engine, or the
next-edit process the plan serves beside it (engine/paired.py; docs/next-edit.md, "A team server").

A GPU plan with room runs a trained next-edit model (Sweep) in a second vLLM process on loopback;
without this, a team's members, who reach the engine only through the front, never reached it.
So the front knows both upstreams (``--upstream``, ``--next-edit-upstream`` with
``--next-edit-model``, its served name) and:

- a POST to /v1/completions or /v1/chat/completions goes to the next-edit process when, and only
  when, the checked body's ``model`` (engine/front_limits.py ``Checked``: the string vLLM will read,
  after the same limits) is exactly the next-edit model's name: no prefix, case or Unicode folding,
  no other type; everything else goes to the completion engine, which answers its own 404 for a
  name it does not serve;
- when the next-edit process is down (restarting, given up), requests for its model get a 503 of
  their own (``NEXT_EDIT_DOWN``), never the completion engine's answer;
- GET /v1/models lists both: the completion engine's listing first and whole (editors take the
  first listed model for completion: backend/client.py), then the next-edit process's entry for
  that one name; each listing read within ``LISTING_S`` and ``MAX_LISTING`` bytes (vLLM's is under
  1 KiB per model), parsed on the event loop only at that size; a next-edit process that does not
  answer within ``BESIDE_LISTING_S`` leaves the completion engine's listing as it is; GET /health
  stays the completion engine's;
- nothing else of the next-edit process is reachable: the front's routes are the same four.

The next-edit process listens on a port fixed when the engine is built (engine/launch.py), so the
front's command line stays right across that process's restarts; while it is down, another user
may take that port, so the front sends nothing to a port this user does not hold
(engine/port_owner.py, checked in engine/front.py before each request).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2 as httpx

from .port_owner import owned

MODELS = "/v1/models"
MAX_LISTING = 64 << 10  # a model listing's bytes (front_limits.INLINE: small enough to parse on the loop)
LISTING_S = 10.0  # one listing, from the request to its last byte
# The next-edit process's listing, read beside the engine's: a member's GET /v1/models waits for it
# at most this long. At LISTING_S, a hung next-edit process held every member's listing 10 s, past
# an editor's own 5 s limit (backend/listing.py), so every editor lost the team's endpoint
# (tests/adversarial/test_team.py); without its entry, editors simply do not ask it for a while.
BESIDE_LISTING_S = 2.0
NEXT_EDIT_DOWN = "the next-edit model {name} is not running on this team server now; try again later"


class ListingFailed(Exception):
    """An upstream's model listing did not arrive whole within the bounds."""


@dataclass(frozen=True)
class Routes:
    main: str  # the completion engine's (or a fleet's router's) root URL, on loopback
    next_edit: str | None  # the next-edit process's root URL, on loopback; None: none is served
    next_edit_model: str | None  # its served name

    def pick(self, model: str | None) -> str:
        """The upstream for a generation request whose checked body names ``model``."""
        if self.next_edit is not None and model is not None and model == self.next_edit_model:
            return self.next_edit
        return self.main


@dataclass(frozen=True)
class Listing:
    status: int
    body: bytes
    content_type: str


async def read_listing(http: httpx.AsyncClient, url: str, headers: dict[str, str], within_s: float) -> Listing:
    """GET ``url`` whole, within ``within_s`` (``LISTING_S`` at most) and ``MAX_LISTING`` bytes;
    raises ``ListingFailed`` or httpx's errors."""
    try:
        async with asyncio.timeout(within_s), http.stream("GET", url, headers=headers) as resp:
            chunks, size = [], 0
            async for chunk in resp.aiter_raw():
                size += len(chunk)
                if size > MAX_LISTING:
                    raise ListingFailed(f"over {MAX_LISTING} bytes")
                chunks.append(chunk)
            return Listing(resp.status_code, b"".join(chunks), resp.headers.get("content-type", "application/json"))
    except TimeoutError as exc:
        raise ListingFailed(f"not within {within_s:g} s") from exc


async def ours(url: str) -> bool:
    """Is ``url``'s port held by this user (engine/port_owner.py)? The table is read off the loop."""
    port = urlsplit(url).port
    return port is not None and await asyncio.to_thread(owned, port)


async def read_ours(http: httpx.AsyncClient, url: str, headers: dict[str, str], within_s: float) -> Listing:
    """``read_listing`` of a port this user holds (``ours``), else httpx's connection error."""
    if not await ours(url):
        raise httpx.ConnectError("the port is not held by this user")
    return await read_listing(http, url, headers, within_s)


def merged(main: bytes, next_edit: bytes, name: str) -> bytes | None:
    """The completion engine's listing with the next-edit model's entry after its own, or None
    when either is not a listing (the caller then relays the completion engine's as it is)."""
    try:
        first, second = json.loads(main), json.loads(next_edit)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the recursion limit
        return None
    if not (_listing(first) and _listing(second)):
        return None
    if any(isinstance(m, dict) and m.get("id") == name for m in first["data"]):
        return None  # listed already
    entry = next((m for m in second["data"] if isinstance(m, dict) and m.get("id") == name), None)
    if entry is None:
        return None
    return json.dumps({**first, "data": [*first["data"], entry]}, ensure_ascii=False).encode()


def _listing(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("data"), list)
