"""GPU facts from NVML (``pynvml``, shipped by nvidia-ml-py). No GPU, no driver or no pynvml is a
normal case: the answer is an empty list and the CPU profile is planned."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
