"""GPU facts from NVML (``pynvml``, shipped by nvidia-ml-py). No GPU, no driver or no pynvml is a
normal case: the answer is an empty list and the CPU profile is planned. CPU facts (flags, the
cores this process may use, available memory) come from ``/proc``, read bounded: engine/planning/cpu.py
chooses the CPU engine from them."""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_mb: int
    free_mb: int
    compute_capability: tuple[int, int] = (8, 0)
    driver: str = ""
    processes: tuple[tuple[int, str, int], ...] = ()  # other programs on it: (pid, name, MiB)

    @property
    def total_gb(self) -> float:
        return self.total_mb / 1024


def read_gpus() -> list[Gpu]:
    try:
        import pynvml
    except ImportError:
        log.debug("pynvml not installed: assuming no NVIDIA GPU")
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        log.debug("no NVIDIA GPU visible (%s)", exc)  # the plan says so ("no NVIDIA GPU: CPU profile")
        return []
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            cc = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            total, free = int(mem.total) // 2**20, int(mem.free) // 2**20
            gpus.append(Gpu(i, name, total, free, (int(cc[0]), int(cc[1])), driver, _processes(pynvml, handle)))
        return gpus
    except Exception as exc:
        log.warning("NVML query failed: %s", exc)
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            log.debug("nvmlShutdown failed", exc_info=True)


def _processes(pynvml: object, handle: object) -> tuple[tuple[int, str, int], ...]:
    """Programs holding memory on the GPU (compute and graphics), biggest first."""
    found: dict[int, int] = {}
    for query in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            for proc in getattr(pynvml, query)(handle):
                used = getattr(proc, "usedGpuMemory", None)
                found[int(proc.pid)] = int(used) // 2**20 if isinstance(used, int) else 0
        except Exception:  # not supported on this driver or GPU: nothing to show
            continue
    return tuple(sorted(((pid, _comm(pid), mib) for pid, mib in found.items()), key=lambda p: -p[2]))


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read(64).strip() or "?"
    except OSError:
        return "?"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- the CPU ---------------------------------------------------------------------------------------
PROC_READ_BYTES = 64 * 1024  # the first processor's block holds the flags (about 1.5 KB each)
_FLAG = re.compile(r"^[a-z0-9_]{1,32}$")
MAX_FLAGS = 512


@dataclass(frozen=True)
class Cpu:
    model: str  # "AMD EPYC 7B13", at most 80 printable characters
    flags: frozenset[str]
    cores: int  # the cores this process may run on (os.sched_getaffinity), not the machine's
    mem_gib: float  # MemAvailable: what an engine can take without swapping

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags


def read_cpu(cpuinfo: Path = Path("/proc/cpuinfo"), meminfo: Path = Path("/proc/meminfo"),
             cores: int | None = None) -> Cpu:
    """This machine's CPU (``/proc`` read at most 64 KiB a file); unreadable parts are empty."""
    model, flags = parse_cpuinfo(_read_bounded(cpuinfo))
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Cpu(model, flags, max(1, cores), parse_meminfo(_read_bounded(meminfo)))


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """The model name and flags of the first processor (x86 ``flags``, Arm ``Features``)."""
    model, flags = "", frozenset[str]()
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key == "model name" and not model:
            model = "".join(c for c in value.strip() if c.isprintable())[:80]
        elif sep and key in ("flags", "features") and not flags:
            flags = frozenset([f for f in value.split() if _FLAG.match(f)][:MAX_FLAGS])
    return model, flags


def parse_meminfo(text: str) -> float:
    """MemAvailable in GiB (0.0 when absent or garbled)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key == "MemAvailable" and parts and parts[0].isdigit() and len(parts[0]) < 13:
            return int(parts[0]) / (1 << 20)  # kB
    return 0.0


def _read_bounded(path: Path) -> str:
    """At most ``PROC_READ_BYTES`` of a regular file (``/proc`` files are regular, size 0);
    a FIFO or a device swapped in is not read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, PROC_READ_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)
