"""A stand-in for NVIDIA's ``pynvml`` at the import boundary, for end-to-end tests of GPU plans on
machines without a GPU: ``install(folder, gpus)`` writes a ``pynvml.py`` there that reports
``gpus`` as NVML would (engine/planning/hardware.py reads only these calls); put ``folder`` first
on the server's ``PYTHONPATH``. Each GPU is (name, total MiB, used MiB, compute capability)."""

from __future__ import annotations

import json
from pathlib import Path

MODULE = '''"""A fake pynvml (tests/fake_nvml.py)."""
import json
from types import SimpleNamespace

GPUS = json.loads({gpus!r})


def nvmlInit():
    pass


def nvmlShutdown():
    pass


def nvmlSystemGetDriverVersion():
    return "560.35"


def nvmlDeviceGetCount():
    return len(GPUS)


def nvmlDeviceGetHandleByIndex(index):
    return GPUS[index]


def nvmlDeviceGetName(handle):
    return handle[0]


def nvmlDeviceGetMemoryInfo(handle):
    total, used = handle[1] * 2**20, handle[2] * 2**20
    return SimpleNamespace(total=total, free=total - used, used=used)


def nvmlDeviceGetCudaComputeCapability(handle):
    return tuple(handle[3])


def nvmlDeviceGetComputeRunningProcesses(handle):
    return []


def nvmlDeviceGetGraphicsRunningProcesses(handle):
    return []
'''


def install(folder: Path, gpus: list[tuple[str, int, int, tuple[int, int]]]) -> Path:
    """``folder``/pynvml.py reporting ``gpus``; returns ``folder`` (for ``PYTHONPATH``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pynvml.py").write_text(MODULE.format(gpus=json.dumps(gpus)))
    return folder
