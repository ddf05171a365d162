"""``vllm-companion plan``: what would run on hardware that is not (or not only) this machine's, and
the arithmetic behind it (engine/planning/: whatif.py for GPUs, plan.py with the CPU's facts,
cluster.py across an inventory's hosts). Nothing is started: the planner's answer, printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import cli_checks as checks


def add_commands(sub: Any) -> None:
    what = sub.add_parser("plan", help="what would run on these GPUs, and the memory arithmetic behind it")
    what.add_argument("--gpu", action="append", metavar="NAME:TOTAL_MIB:USED_MIB[:CC]",
                      help="a GPU to plan for (repeatable); default: the GPUs NVML reports")
    what.add_argument("--model", type=checks.known_model, help="a model to check instead of the planner's choice")
    what.add_argument("--context", type=checks.positive_int, help="max-model-len to check")
    what.add_argument("--utilization", type=checks.utilization, help="gpu-memory-utilization to check (0-1]")
    what.add_argument("--inventory", help="a JSON file of hosts and their GPUs: plan across hosts (Ray)")
    what.add_argument("--cpu", type=checks.cpu_spec, metavar="flags=avx2;cores=2;mem_gib=24",
                      help="plan for this CPU (no GPU unless --gpu); also engines=, cached=, rates= (docs/models.md)")
    what.add_argument("--kind", choices=["vllm", "llamacpp"], help="the engine, as engine.kind would")


def run(args: argparse.Namespace) -> int:
    """GPUs given (``--gpu``) or NVML's: the memory arithmetic per model; no GPU, ``--cpu`` or
    ``--kind``: the plan with the CPU's facts; ``--inventory``: a plan across hosts."""
    from .engine.planning.hardware import read_gpus
    from .engine.planning.whatif import BadSpec, parse_gpu, what_if

    if args.inventory:
        return _cluster_what_if(args)
    try:
        gpus = [parse_gpu(spec, i) for i, spec in enumerate(args.gpu)] if args.gpu else [] if args.cpu else read_gpus()
    except BadSpec as exc:
        print(f"vllm-companion: {exc}", file=sys.stderr)
        return 2
    if not gpus or args.cpu or args.kind:
        return _cpu_what_if(args, gpus)
    for line in what_if(gpus, args.model, args.context, args.utilization):
        print(line)
    return 0


def _cpu_what_if(args: argparse.Namespace, gpus: list[Any]) -> int:
    """The plan with the CPU's facts (``--cpu``, else this machine's): engine, model and why."""
    from .engine.cpu_local import facts_here
    from .engine.planning.nextedit_plan import next_edit_lines
    from .engine.planning.plan import plan_launch

    overrides = {k: v for k, v in (("kind", args.kind), ("model", args.model), ("maxModelLen", args.context)) if v}
    plan = plan_launch(gpus, overrides, args.cpu or facts_here())
    print(f"plan: {plan.describe()}\nwhy: {plan.reason}")
    if plan.arithmetic:
        print(f"arithmetic: {plan.arithmetic}")
    for label, text in next_edit_lines(plan):
        print(f"{label}: {text}")
    return 0


def _cluster_what_if(args: argparse.Namespace) -> int:
    from .engine.planning.cluster import BadInventory, load_inventory, plan_cluster
    from .engine.planning.plan import NoFit

    try:
        found = plan_cluster(load_inventory(Path(args.inventory)), args.model, args.context)
    except BadInventory as exc:
        print(f"vllm-companion: {exc}", file=sys.stderr)
        return 2
    if isinstance(found, NoFit):
        print(f"does not fit: {found.why}")
        return 1
    print(f"plan: {found.plan.describe()}\nwhy: {found.plan.reason}\narithmetic: {found.plan.arithmetic}")
    print("run:\n  " + "\n  ".join(found.commands()))
    return 0
