"""Is the process that takes connections to one of our engine's loopback ports ours (this user's)?

Behind a team's front the engine and the plan's next-edit process listen on ports fixed when the
engine is built (engine/launch.py: the front's command line names them), and the front sends every
member's request to ``127.0.0.1`` there with the engine's own key (``Authorization``), as the
supervisor's readiness probes do. While one of them is down (a restart waits seconds, vLLM loads
for a minute; a next-edit process that gave up stays down), any other local user may bind that
port: the front then handed the stranger the engine's key and the members' code, and the
supervisor's probes, finding the stranger "ready", the key too (tests/adversarial/test_team.py).
So before either sends anything to such a port, this module checks, from the kernel's socket
tables (``/proc/net/tcp`` and ``tcp6``: the ``uid`` column is the socket's owner), that every
socket that could accept a connection to ``127.0.0.1`` on it belongs to this user or to root
(root reads our key's 0600 record anyway; a root-run ``docker-proxy`` may front an
``engine.command`` wrapper). None such, or any other owner, and nothing is sent.

Only those sockets count: in ``tcp`` one bound to 127.0.0.1 or 0.0.0.0, in ``tcp6`` one bound to
``::`` or ``::ffff:127.0.0.1``. Counting every listener on the port let another user bind it on
127.0.0.2 or ``::1`` beside our engine (the kernel allows that) and so make the front refuse every
request and the supervisor restart a healthy engine in a loop (tests/adversarial/test_team.py).
A ``::`` socket with ``IPV6_V6ONLY`` takes no IPv4 connection, but the tables do not say so: that
is why ``tcp6`` is read only when ``tcp`` lists no such socket. Beside a 127.0.0.1 or 0.0.0.0
listener the kernel refuses another user's dual-stack ``::`` or ``::ffff:127.0.0.1`` bind
(measured: EADDRINUSE, even with ``SO_REUSEADDR``), so a ``::`` there is ``V6ONLY`` and harmless;
with no IPv4 listener a ``::`` one may take 127.0.0.1's connections and is counted. Reading one
table when the engine listens on IPv4 also halves the cost: a read takes 3.5 ms even with few
sockets (the kernel walks its whole hash table), and the front checks before every request.

Same user is the trust boundary that matters here: a process of ours can read the engine's key
in its 0600 record anyway. A port's listener cannot change while it listens (another user's
``SO_REUSEPORT`` bind is refused by the kernel), so the window left is the instant between this
check and the connection. The tables are read in a worker thread (callers: ``asyncio.to_thread``),
at most ``MAX_TABLE`` bytes each (about 200,000 sockets); a table that cannot be read, or is
larger, proves nothing, and the answer is no. A system with neither table, or whose tables list
no listening socket at all (WSL1 leaves them empty), cannot tell, and is taken at its word.
Format: Documentation/networking/proc_net_tcp.rst (addresses as the kernel's 32-bit words in hex).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TCP, TCP6 = "/proc/net/tcp", "/proc/net/tcp6"
MAX_TABLE = 32 << 20
LISTEN = "0A"  # the st column of a listening socket
ROOT = 0
# Local addresses whose listener takes a connection to 127.0.0.1, as the tables write them.
LOOPBACK_V4 = frozenset({"0100007F", "00000000"})  # 127.0.0.1, 0.0.0.0
LOOPBACK_V6 = frozenset({"0" * 32, "0000000000000000FFFF00000100007F"})  # ::, ::ffff:127.0.0.1


@dataclass(frozen=True)
class Scan:
    """One table's answer for one port."""

    owners: frozenset[int]  # uids of the sockets that take 127.0.0.1's connections (-1: unreadable)
    listening: bool  # does the table list any listening socket at all


UNREADABLE = Scan(frozenset({-1}), True)
ABSENT = Scan(frozenset(), False)


def owned(port: int) -> bool:
    """Every socket that would take a connection to 127.0.0.1:``port`` is this user's or root's,
    and there is one. A system whose tables cannot tell (none, or none listing any listener) is
    taken at its word as before: refusing there would leave every engine unready forever."""
    if not (os.path.exists(TCP) or os.path.exists(TCP6)):
        return True
    v4 = read(TCP, port, LOOPBACK_V4)
    if v4.owners:
        return trusted(v4.owners)
    v6 = read(TCP6, port, LOOPBACK_V6)
    if v6.owners:
        return trusted(v6.owners)
    return not (v4.listening or v6.listening)


def trusted(owners: frozenset[int]) -> bool:
    return owners <= {os.getuid(), ROOT}


def read(table: str, port: int, addresses: frozenset[str]) -> Scan:
    """``scan`` of ``table``, read whole; ``UNREADABLE`` when it cannot be (or is over the cap)."""
    try:
        with open(table, "rb") as f:
            data = f.read(MAX_TABLE + 1)
    except FileNotFoundError:  # no IPv6 in this kernel
        return ABSENT
    except OSError:
        return UNREADABLE
    if len(data) > MAX_TABLE:
        return UNREADABLE
    return scan(data.decode("ascii", "replace"), port, addresses)


def scan(text: str, port: int, addresses: frozenset[str]) -> Scan:
    """The owners of the sockets listening on one of ``addresses`` at ``port`` in a table's text
    (a pure function, so the parsing is tested without /proc: tests/unit/test_port_owner.py).
    A uid that is not a number counts as a stranger's (-1)."""
    owners: set[int] = set()
    listening = False
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) <= 7 or fields[3] != LISTEN:
            continue
        listening = True
        address, _, hex_port = fields[1].upper().rpartition(":")
        if address in addresses and hex_port == f"{port:04X}":
            owners.add(int(fields[7]) if fields[7].isdigit() else -1)
    return Scan(frozenset(owners), listening)
