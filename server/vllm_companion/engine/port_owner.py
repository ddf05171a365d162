"""Is the process listening on one of our engine's loopback ports ours (this user's)?

Behind a team's front the engine and the plan's next-edit process listen on ports fixed when the
engine is built (engine/launch.py: the front's command line names them), and the front sends every
member's request there with the engine's own key (``Authorization``), as the supervisor's readiness
probes do. While one of them is down (a restart waits seconds, vLLM loads for a minute; a
next-edit process that gave up stays down), any other local user may bind that port: the front
then handed the stranger the engine's key and the members' code, and the supervisor's probes,
finding the stranger "ready", the key too (tests/adversarial/test_team.py). So before either
sends anything to such a port, this module checks, from the kernel's socket tables
(``/proc/net/tcp`` and ``tcp6``: the ``uid`` column is the socket's owner), that every socket
listening on it belongs to this user; none listening, or any other owner, and nothing is sent.

Same user is the trust boundary that matters here: a process of ours can read the engine's key
in its 0600 record anyway. A port's listener cannot change while it listens (another user's
``SO_REUSEPORT`` bind is refused by the kernel), so the window left is the instant between this
check and the connection. The tables are read in a worker thread (callers: ``asyncio.to_thread``),
at most ``MAX_TABLE`` bytes each (about 200,000 sockets); a table that cannot be read, or is
larger, proves nothing, and the answer is no. Format: Documentation/networking/proc_net_tcp.rst.
"""

from __future__ import annotations

import os

TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
MAX_TABLE = 32 << 20
LISTEN = "0A"  # the st column of a listening socket


def owned(port: int) -> bool:
    """Something listens on ``port`` (any address: a wildcard listener takes loopback's
    connections too) and every such socket is this user's. A system with neither table (no
    ``/proc/net``) cannot tell, and is taken at its word as before: refusing there would leave
    every engine unready forever."""
    if not any(os.path.exists(table) for table in TABLES):
        return True
    owners = listeners(port)
    return bool(owners) and owners <= {os.getuid()}


def listeners(port: int) -> set[int]:
    """The uids of the sockets listening on ``port``; ``{-1}`` when a table cannot be read whole."""
    owners: set[int] = set()
    suffix = f":{port:04X}"
    for table in TABLES:
        try:
            with open(table, "rb") as f:
                data = f.read(MAX_TABLE + 1)
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        except OSError:
            return {-1}
        if len(data) > MAX_TABLE:
            return {-1}
        for line in data.decode("ascii", "replace").splitlines()[1:]:
            fields = line.split()
            if len(fields) > 7 and fields[3] == LISTEN and fields[1].endswith(suffix):
                owners.add(int(fields[7]) if fields[7].isdigit() else -1)
    return owners
