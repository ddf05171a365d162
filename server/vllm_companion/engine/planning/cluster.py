"""Models bigger than one host's GPUs: tensor x pipeline parallel over several hosts, on vLLM's
Ray backend, planned from a declared inventory (NVML sees only this host).

vLLM's rule (docs.vllm.ai, "Parallelism and scaling"): within a host, tensor parallel over its
GPUs; across hosts, pipeline parallel over the hosts (tensor parallel = GPUs per host, pipeline
parallel = hosts), with ``--distributed-executor-backend ray`` on a Ray cluster that every host
joins (``ray start --head`` on the first, ``ray start --address`` on the others) and
``vllm serve`` run on the head. We plan, print the commands and supervise the head's engine; Ray
does the distributed work.

The layout is the smallest that fits, by the arithmetic of engine/planning/memory.py with weights and KV
split over ``tp x pp`` GPUs (pipeline stages split layers, tensor shards split each layer; the
activation peak is per GPU): one host with the fewest GPUs first, then more hosts; at each layout
the context halves down to ``MIN_CONTEXT`` before the next layout is tried. Pure: tests inject
inventories. The inventory is JSON (``vllm-companion plan --inventory FILE``)::

    {"hosts": [{"name": "a", "address": "10.0.0.1", "gpus": [{"name": "A100", "total_mib": 81920}]}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .architectures import arch_of, quantization_of
from .candidates import CANDIDATES, MIN_CONCURRENCY, MIN_CONTEXT
from .hardware import Gpu
from .memory import GIB, Fit, fit, utilization_for
from .plan import LaunchPlan, NoFit, plan_launch, powers_of_two

MAX_INVENTORY_BYTES = 64 << 10
RAY_PORT = 6379


class BadInventory(ValueError):
    pass


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    gpus: tuple[Gpu, ...]


@dataclass(frozen=True)
class ClusterPlan:
    plan: LaunchPlan  # the head's engine: tensor_parallel x pipeline_parallel GPUs
    hosts: tuple[Host, ...]  # the hosts it uses, head first

    def commands(self) -> list[str]:
        """What to run, host by host (Ray first, then the engine on the head)."""
        if len(self.hosts) == 1:
            return [f"{self.hosts[0].name}: vllm-companion engine start --team --model {self.plan.model}"]
        head = self.hosts[0]
        lines = [f"{head.name}: ray start --head --port {RAY_PORT}"]
        lines += [f"{h.name}: ray start --address {head.address}:{RAY_PORT}" for h in self.hosts[1:]]
        return [*lines, f"{head.name}: vllm-companion engine start --team --inventory FILE --model {self.plan.model}"]


def load_inventory(path: Path) -> list[Host]:
    """A bounded read of a JSON inventory the user wrote (a file, not ours: checked field by field)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INVENTORY_BYTES + 1)
    except OSError as exc:
        raise BadInventory(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_INVENTORY_BYTES:
        raise BadInventory(f"{path}: larger than {MAX_INVENTORY_BYTES} bytes")
    try:
        return parse_inventory(json.loads(data))
    except ValueError as exc:
        raise BadInventory(f"{path}: {exc}") from exc


def parse_inventory(data: Any) -> list[Host]:
    hosts = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, list) or not 0 < len(hosts) <= 64:
        raise BadInventory('expected {"hosts": [...]} with 1-64 hosts')
    return [_host(h, i) for i, h in enumerate(hosts)]


def _host(raw: Any, index: int) -> Host:
    if not isinstance(raw, dict) or not isinstance(raw.get("gpus"), list) or not 0 < len(raw["gpus"]) <= 16:
        raise BadInventory(f"host {index}: expected an object with 1-16 gpus")
    name, address = str(raw.get("name") or f"host{index}")[:64], str(raw.get("address") or "")[:253]
    if not address or any(c.isspace() for c in address):
        raise BadInventory(f"host {name}: an address is required")
    gpus = []
    for i, g in enumerate(raw["gpus"]):
        total, used = (g.get("total_mib"), g.get("used_mib", 0)) if isinstance(g, dict) else (None, None)
        if not (isinstance(total, int) and isinstance(used, int) and 0 < total < 1 << 22 and 0 <= used < total):
            raise BadInventory(f"host {name} gpu {i}: total_mib (and used_mib) must be whole MiB")
        cc = str(g.get("cc", "8.0")).partition(".")
        gpus.append(Gpu(i, str(g.get("name", "GPU"))[:64], total, total - used, (int(cc[0] or 8), int(cc[2] or 0))))
    return Host(name, address, tuple(gpus))


def plan_cluster(hosts: list[Host], model: str | None = None, context: int | None = None) -> ClusterPlan | NoFit:
    """The smallest layout that serves ``model`` (default: the best candidate that fits), or why none does."""
    if len(hosts) == 1 and model is None:
        return ClusterPlan(plan_launch(list(hosts[0].gpus)), (hosts[0],))
    models = [(model, quantization_of(model, None))] if model else [(c.model, c.quantization) for c in CANDIDATES]
    short = NoFit("no model fits")
    for name, quant in models:
        found = _smallest_layout(hosts, name, quant, context)
        if isinstance(found, ClusterPlan):
            return found
        short = found
    return short


def _smallest_layout(hosts: list[Host], model: str, quant: str | None, context: int | None) -> ClusterPlan | NoFit:
    arch = arch_of(model)
    if arch is None:
        return NoFit(f"{model}: no architecture on record (engine/planning/architectures.py): cannot do the arithmetic")
    per_host = min(len(h.gpus) for h in hosts)
    layouts = [(tp, 1) for tp in powers_of_two(per_host)] + [(per_host, pp) for pp in range(2, len(hosts) + 1)]
    gpus = [g for h in hosts for g in h.gpus]
    total, util = min(g.total_mb for g in gpus), min(utilization_for(g.total_mb, g.free_mb) for g in gpus)
    last: Fit | None = None
    for tp, pp in layouts:
        length = min(context or 16384, arch.max_context)
        while length >= MIN_CONTEXT:
            last = fit(arch, quant, total, util, length, tensor_parallel=tp * pp)
            if last.tokens >= length * MIN_CONCURRENCY:
                return _cluster_plan(hosts[:pp], model, quant, tp, pp, length, last)
            length //= 2
    need = f"{-last.kv / GIB:.1f} GiB short per GPU" if last and last.kv < 0 else "too little KV cache"
    return NoFit(f"{model} does not fit on {len(gpus)} GPUs ({need} at tensor x pipeline {per_host} x {len(hosts)})")


def _cluster_plan(hosts: list[Host], model: str, quant: str | None, tp: int, pp: int, length: int,
                  result: Fit) -> ClusterPlan:
    gpu = hosts[0].gpus[0]
    base = LaunchPlan(engine="vllm", device="cuda", model=model, served_name=model, quantization=quant,
                      dtype="auto" if gpu.compute_capability >= (8, 0) else "float16",
                      gpu_memory_utilization=result.utilization, max_model_len=length, max_num_seqs=32)
    reason = f"tensor {tp} x pipeline {pp} on {gpu.name} ({'one host' if pp == 1 else f'{pp} hosts, Ray'})"
    plan = replace(base, tensor_parallel=tp, pipeline_parallel=pp, reason=reason, arithmetic=result.explain())
    return ClusterPlan(plan, tuple(hosts))
