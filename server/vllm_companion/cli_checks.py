"""Argument types for the command line: a bad value is a usage line and exit 2, never a traceback
or a silently ignored value (issue 23: ``lsp --tcp garbage`` raised ValueError, ``plan
--utilization 5`` planned "119.94 GiB usable" on a 24 GB card, ``--utilization 0`` was dropped as
falsy, ``--context -1`` asked for negative lengths, ``--family nonsense`` fell back to auto).

Each function is an ``argparse`` ``type=``: it raises ``ArgumentTypeError`` with the rule, and
argparse prints ``usage: ...`` plus that message and exits 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import re

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def host(text: str) -> str:
    """An IP address or a host name (no scheme, no port, no spaces)."""
    bare = text.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return bare
    except ValueError:
        pass
    if not _HOSTNAME.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or IP address")
    return text


def tcp_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``:PORT`` (host 127.0.0.1); IPv6 as ``[::1]:PORT``."""
    where, sep, number = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:2087")
    return (host(where) if where else "127.0.0.1"), port(number)


def utilization(text: str) -> float:
    """vLLM's ``--gpu-memory-utilization``: a share of the card, above 0 and at most 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a share of GPU memory, above 0 and at most 1 (e.g. 0.9)")
    return value


def positive_int(text: str) -> int:
    """A count or a length: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return int(text)


def family(text: str) -> str:
    """``auto`` or one of the prompt families (prompts/families.py)."""
    from .prompts.families import BY_NAME

    if text != "auto" and text not in BY_NAME:
        raise argparse.ArgumentTypeError(f"{text!r}: expected auto or one of {', '.join(sorted(BY_NAME))}")
    return text


def known_model(text: str) -> str:
    """A model whose architecture is on record (engine/planning/architectures.py): the arithmetic of
    ``plan`` and ``doctor`` needs it; an unknown id would silently get another model's numbers."""
    from .engine.planning.architectures import arch_of

    if arch_of(text) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: no architecture on record for this model "
            "(engine/planning/architectures.py lists the known ones)")
    return text


def positive_float(text: str) -> float:
    """A duration or a span: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number above 0")
    return value


def cpu_spec(text: str) -> object:
    """A CPU to plan for, ``flags=avx2;cores=2;mem_gib=24`` (engine/cpu_local.py ``parse_cpu_spec``
    lists the optional ``engines=``, ``cached=`` and ``rates=``): a typo is a usage line, never a
    silently different machine."""
    from .engine.cpu_local import BadCpuSpec, parse_cpu_spec

    try:
        return parse_cpu_spec(text)
    except BadCpuSpec as exc:
        raise argparse.ArgumentTypeError(f"--cpu {text!r}: {exc}") from exc
