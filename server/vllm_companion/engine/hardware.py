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

    @property
    def total_gb(self) -> float:
        return self.total_mb / 1024


def read_gpus() -> list[Gpu]:
    try:
        import pynvml
    except ImportError:
        log.info("pynvml not installed: assuming no NVIDIA GPU")
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        log.info("no NVIDIA GPU visible (%s)", exc)
        return []
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            cc = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            gpus.append(Gpu(i, name, int(mem.total) // 2**20, int(mem.free) // 2**20, (int(cc[0]), int(cc[1])), driver))
        return gpus
    except Exception as exc:
        log.warning("NVML query failed: %s", exc)
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            log.debug("nvmlShutdown failed", exc_info=True)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
