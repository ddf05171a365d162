"""The one loopback rule (loopback.py): what decides whether a registry record is discarded,
whether a team host needs a key, and whether prompts going to an endpoint are redacted. A host
name is never judged by how it starts."""

from __future__ import annotations

import pytest

from vllm_companion.loopback import is_loopback


@pytest.mark.parametrize("url", [
    "http://127.0.0.1.evil.example/v1",  # a DNS name that starts like a loopback address
    "http://127.0.0.1.nip.io:8000/v1",
    "http://localhost.evil.example/v1",
    "http://127.evil/v1",
    "http://0.0.0.0:8000/v1",
    "http://[::]:8000/v1",
    "http://10.0.0.1/v1",
    "http://[::ffff:10.0.0.1]/v1",
    "file:///tmp/x",
    "http:///v1",
    "http://[::1/v1",  # not a URL
    None,
    8000,
])
def test_names_and_other_hosts_that_look_like_loopback_are_not_loopback(url: object) -> None:
    assert is_loopback(url) is False


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1",
    "http://127.1.2.3/v1",
    "http://localhost:8000/v1",
    "http://LOCALHOST:8000/v1",
    "http://[::1]:8000/v1",
    "http://[::ffff:127.0.0.1]:8000/v1",
])
def test_loopback_literals_and_localhost_are_loopback(url: str) -> None:
    assert is_loopback(url) is True
