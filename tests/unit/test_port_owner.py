"""engine/port_owner.py on synthetic socket tables (the kernel's format:
Documentation/networking/proc_net_tcp.rst); the same against real sockets of another user is in
tests/adversarial/test_team.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vllm_companion.engine import port_owner
from vllm_companion.engine.port_owner import LOOPBACK_V4, LOOPBACK_V6, owned, scan

HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
ME, STRANGER, PORT = os.getuid() or 1000, 65534, 8123  # as root, "me" and root are one: a uid of our own


def row(address: str, port: int, uid: int | str, state: str = "0A") -> str:
    remote = "0" * len(address)
    return f"   0: {address}:{port:04X} {remote}:0000 {state} 00000000:00000000 00:00000000 00000000 {uid} 0 1\n"


def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tcp: str | None, tcp6: str | None) -> None:
    for name, text in (("TCP", tcp), ("TCP6", tcp6)):
        path = tmp_path / name
        if text is not None:
            path.write_text(HEAD + text)
        monkeypatch.setattr(port_owner, name, str(path))
    monkeypatch.setattr(os, "getuid", lambda: ME)


def test_only_listeners_that_take_loopbacks_connections_count() -> None:
    text = HEAD + row("0100007F", PORT, ME) + row("0200007F", PORT, STRANGER) + row("0100007F", PORT + 1, STRANGER) \
        + row("00000000", PORT, 7) + row("0100007F", PORT, STRANGER, state="01") + row("0100007F", 0x1F90 + PORT, 9)
    assert scan(text, PORT, LOOPBACK_V4) == port_owner.Scan(frozenset({ME, 7}), True)
    v6 = HEAD + row("00000000000000000000000001000000", PORT, STRANGER) \
        + row("0000000000000000FFFF00000100007F", PORT, 5) + row("0" * 32, PORT, 6)
    assert scan(v6, PORT, LOOPBACK_V6).owners == {5, 6}  # ::1 is not one


def test_a_uid_that_is_not_a_number_is_a_strangers_and_short_lines_are_skipped() -> None:
    text = HEAD + row("0100007F", PORT, "x1") + "   1: 0100007F:1FBB 00000000:0000 0A\n" + "garbage\n"
    assert scan(text, PORT, LOOPBACK_V4) == port_owner.Scan(frozenset({-1}), True)
    assert scan(HEAD + row("0100007F", PORT, ME, state="06"), PORT, LOOPBACK_V4) == port_owner.Scan(frozenset(), False)


@pytest.mark.parametrize(("tcp", "tcp6", "expected"), [
    (row("0100007F", PORT, ME), row("0" * 32, PORT, STRANGER), True),  # a :: beside ours is V6ONLY (kernel)
    (row("0100007F", PORT, ME) + row("0200007F", PORT, STRANGER), "", True),  # 127.0.0.2 takes nothing of ours
    (row("0100007F", PORT, ME) + row("00000000", PORT, STRANGER), "", False),
    (row("0100007F", PORT, 0), "", True),  # root's (a docker-proxy): root reads our key anyway
    (row("0200007F", PORT, ME), row("0" * 32, PORT, STRANGER), False),  # a dual-stack :: takes 127.0.0.1
    ("", row("0000000000000000FFFF00000100007F", PORT, STRANGER), False),
    ("", row("0" * 32, PORT, ME), True),
    (row("0100007F", PORT + 1, ME), "", False),  # nothing on the port: the engine is down
    ("", "", True),  # no listener at all (WSL1's empty tables): cannot tell
    ("", None, True),
    (row("0100007F", PORT, ME), None, True),  # a kernel without IPv6
])
def test_owned_reads_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tcp: str, tcp6: str | None,
                                expected: bool) -> None:
    tables(tmp_path, monkeypatch, tcp, tcp6)
    assert owned(PORT) is expected


def test_a_table_unread_or_over_the_cap_proves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables(tmp_path, monkeypatch, row("0100007F", PORT + 1, ME), row("0" * 32, PORT, ME))
    assert owned(PORT)
    (tmp_path / "TCP").unlink()
    (tmp_path / "TCP").mkdir()  # open() fails with an OSError that is not "absent"
    assert not owned(PORT)
    tables(tmp_path / "big", monkeypatch, None, None)
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "TCP").write_text(HEAD + row("0100007F", PORT, ME) * 10)
    monkeypatch.setattr(port_owner, "MAX_TABLE", 100)
    assert not owned(PORT)
    monkeypatch.setattr(port_owner, "MAX_TABLE", 1 << 20)
    assert owned(PORT)


def test_a_system_without_the_tables_is_taken_at_its_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables(tmp_path, monkeypatch, None, None)
    assert owned(PORT)
