"""The one HTTP client factory for engines and OpenAI-compatible endpoints (issue 21, point 6).

The only place such a client is built and the only place the bearer header is written: the
backend (backend/connection.py: key, gateway headers, session id), the model listing, the local
engine's readiness probes (engine/readiness.py) and the CPU calibration all take their client
from here. The key wins over an ``Authorization`` header of any case; none of it is ever logged.
The environment's proxies (``HTTP_PROXY``, ``ALL_PROXY``; httpx honours them for 127.0.0.1 too
unless ``NO_PROXY`` names it) are used only for an endpoint beyond loopback (``via_proxy``): a
prompt for the local engine is sent unredacted because it never leaves the machine (privacy.py),
and a proxy without ``NO_PROXY`` used to receive it with the engine's key
(tests/adversarial/test_connection.py). No client follows redirects (httpx's default, kept).
A leaf module: backend/ and engine/ both import it, and it imports neither.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx2 as httpx  # openai >= 3's transport


def auth_headers(api_key: str | None, headers: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """``headers`` (a gateway's own tokens) and the bearer key, which wins over an
    ``Authorization`` header of any case."""
    out = dict(headers)
    if api_key:
        out = {k: v for k, v in out.items() if k.lower() != "authorization"}
        out["Authorization"] = f"Bearer {api_key}"
    return out


def http_client(
    timeout: float | httpx.Timeout, api_key: str | None = None, headers: Iterable[tuple[str, str]] = (),
    *, via_proxy: bool = False,
) -> httpx.AsyncClient:
    """An HTTP client for an engine or an OpenAI-compatible endpoint (close it: ``async with``);
    ``via_proxy`` only for an endpoint beyond loopback (module doc)."""
    return httpx.AsyncClient(timeout=timeout, headers=auth_headers(api_key, headers), trust_env=via_proxy,
                             follow_redirects=False)
