"""Is a URL on this machine's loopback? One answer for the registry record (engine/record.py: an
endpoint beyond loopback is discarded), the launcher and the front (a host beyond loopback needs a
key) and the backend client (a remote endpoint gets redacted prompts). A leaf: it imports nothing
of the package, so backend/ and engine/ both use it without importing each other."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlparse

LOOPBACK_NAMES = {"localhost"}  # RFC 6761 6.3: resolves to loopback only


def is_loopback(url: Any) -> bool:
    """Only ``localhost`` or an IP literal in 127.0.0.0/8 or ``::1`` (an IPv4-mapped one too). A
    name is never judged by its text: ``127.0.0.1.evil.example`` is somebody's DNS name."""
    try:
        host = urlparse(url).hostname if isinstance(url, str) else None
    except ValueError:
        return False
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return (mapped or address).is_loopback
