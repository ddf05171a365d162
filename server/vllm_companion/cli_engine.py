"""``vllm-companion engine start|stop|status``, ``doctor`` and ``demo`` (lsp/demo.py: the
README's first command, an LSP client of our own server)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

from .config import EngineSettings, env_overrides, load_config

STOP_WAIT_S = 20.0



def add_commands(sub: Any) -> None:
    eng = sub.add_parser("engine", help="start, stop or inspect the shared local engine")
    eng.add_argument("action", choices=["start", "stop", "status"])
    eng.add_argument("--foreground", action="store_true", help="supervise here until Ctrl-C")
    eng.add_argument("--team", action="store_true", help="serve a team: an API key is required (made once)")
    eng.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    eng.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    eng.add_argument("--api-key", default=None, help="the key clients must send (or VLLM_COMPANION_ENGINE_KEY)")
    eng.add_argument("--replicas", type=int, default=None, help="a fleet: this many engines behind vLLM's router")
    eng.add_argument("--inventory", default=None, help="a JSON file of hosts and GPUs: this host is the Ray head")
    eng.add_argument("--worker", action="append", default=None, metavar="http://HOST:PORT",
                     help="another host's engine to add to the fleet's router (repeatable)")
    _engine_args(eng)
    doc = sub.add_parser("doctor", help="hardware, launch plan, engine install and health, FIM tokens")
    _engine_args(doc)
    doc.add_argument("--endpoint", help="check this OpenAI-compatible endpoint too")
    what = sub.add_parser("plan", help="what would run on these GPUs, and the memory arithmetic behind it")
    what.add_argument("--gpu", action="append", metavar="NAME:TOTAL_MIB:USED_MIB[:CC]",
                      help="a GPU to plan for (repeatable); default: the GPUs NVML reports")
    what.add_argument("--model", help="a model to check instead of the planner's choice")
    what.add_argument("--context", type=int, help="max-model-len to check")
    what.add_argument("--utilization", type=float, help="gpu-memory-utilization to check")
    what.add_argument("--inventory", help="a JSON file of hosts and their GPUs: plan across hosts (Ray)")
    demo = sub.add_parser("demo", help="start the local engine, then a completion and a chat round trip")
    _engine_args(demo)


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=["vllm", "llamacpp"], help="engine (default vllm)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"])
    p.add_argument("--model", help="model to serve (default: from the sizing guide)")
    p.add_argument("--keep-alive", action="store_true", help="leave the engine running afterwards")


def engine_settings(args: argparse.Namespace) -> EngineSettings:
    given = {"kind": args.kind, "device": args.device, "model": args.model, "keepAlive": args.keep_alive or None,
             "host": getattr(args, "host", None), "port": getattr(args, "port", None),
             "replicas": getattr(args, "replicas", None), "workers": getattr(args, "worker", None),
             "inventory": getattr(args, "inventory", None)}
    config, problems = load_config(env_overrides(), {"engine": {k: v for k, v in given.items() if v is not None}})
    for problem in problems:
        print(f"vllm-companion: {problem}", file=sys.stderr)
    return config.engine


def run(args: argparse.Namespace) -> int:
    if args.command == "engine":
        return {"start": engine_start, "stop": engine_stop, "status": engine_status}[args.action](args)
    if args.command == "plan":
        return what_if_command(args)
    if args.command == "doctor":
        from .doctor import doctor

        return asyncio.run(doctor(engine_settings(args), args.endpoint))
    return asyncio.run(demo(engine_settings(args)))


def what_if_command(args: argparse.Namespace) -> int:
    from .engine.hardware import read_gpus
    from .engine.whatif import BadSpec, parse_gpu, what_if

    if args.inventory:
        return _cluster_what_if(args)
    try:
        gpus = [parse_gpu(spec, i) for i, spec in enumerate(args.gpu)] if args.gpu else read_gpus()
    except BadSpec as exc:
        print(f"vllm-companion: {exc}", file=sys.stderr)
        return 2
    for line in what_if(gpus, args.model, args.context, args.utilization):
        print(line)
    return 0


def _cluster_what_if(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .engine.cluster import BadInventory, load_inventory, plan_cluster

    try:
        found = plan_cluster(load_inventory(Path(args.inventory)), args.model, args.context)
    except BadInventory as exc:
        print(f"vllm-companion: {exc}", file=sys.stderr)
        return 2
    if isinstance(found, str):
        print(f"does not fit: {found}")
        return 1
    print(f"plan: {found.plan.describe()}\nwhy: {found.plan.reason}\narithmetic: {found.plan.arithmetic}")
    print("run:\n  " + "\n  ".join(found.commands()))
    return 0


# -- engine --------------------------------------------------------------------------------------
def engine_start(args: argparse.Namespace) -> int:
    if args.foreground:
        return asyncio.run(_foreground(engine_settings(args)))
    from .engine.registry import EngineRegistry, runtime_dir

    key, problem = _team_key(args)
    if problem:
        print(f"vllm-companion: {problem}", file=sys.stderr)
        return 2
    argv = [sys.executable, "-m", "vllm_companion", "engine", "start", "--foreground", "--keep-alive"]
    given = (("kind", args.kind), ("device", args.device), ("model", args.model), ("host", args.host),
             ("port", args.port))
    argv += [f"--{k}={v}" for k, v in given if v]
    argv += [f"--replicas={args.replicas}"] if args.replicas else []
    argv += [f"--inventory={os.path.abspath(args.inventory)}"] if args.inventory else []
    argv += [f"--worker={url}" for url in args.worker or []]
    env = {**os.environ, **({"VLLM_COMPANION_ENGINE_KEY": key} if key else {})}  # never on a command line
    log_path = runtime_dir() / "engine-service.log"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "ab") as log:
        service = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                   env=env)
    print(f"engine service started (pid {service.pid}), log: {log_path}", file=sys.stderr)
    registry = EngineRegistry()
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline and service.poll() is None:
        record = registry.read()
        if record.get("state") == "ready":
            print(record["endpoint"])
            return 0
        time.sleep(1)
    print(f"vllm-companion: the engine did not become ready; see {log_path}", file=sys.stderr)
    return 1


def _team_key(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The key a team engine requires (given, from the environment, stored, or made and shown
    once), or why the start is refused: never beyond loopback without a key."""
    from .engine.registry import is_loopback, runtime_dir, write_private

    host = args.host or "127.0.0.1"
    key = args.api_key or os.environ.get("VLLM_COMPANION_ENGINE_KEY")
    if (args.replicas or args.worker) and not is_loopback(f"http://{host}/"):
        return None, ("a fleet's router listens on loopback only (its admin routes answer anyone who reaches it): "
                      "put a TLS proxy that forwards /v1/ in front (docs/deployment.md)")
    if not is_loopback(f"http://{host}/") and host not in ("0.0.0.0", "::"):
        return None, f"--host {host}: listen on 0.0.0.0 or loopback (and put a TLS proxy in front; docs/deployment.md)"
    if not is_loopback(f"http://{host}/") and not (args.team or key):
        return None, f"refusing to listen on {host} without an API key: add --team (a key is made) or --api-key KEY"
    if not args.team or key:
        return key, None
    stored = runtime_dir() / "team.key"
    if stored.exists():
        return stored.read_text().strip(), None
    key = secrets.token_urlsafe(32)
    write_private(stored, key + "\n")
    print(f"team API key (shown once; stored in {stored}):\n{key}", file=sys.stderr)
    return key, None


async def _foreground(settings: EngineSettings) -> int:
    from .engine.manager import EngineManager

    def event(e: Any) -> None:
        print(f"[{e.state.value}] {e.message}", file=sys.stderr, flush=True)

    manager = EngineManager(settings, event, lambda endpoint, model, key: print(endpoint, flush=True))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    acquiring = asyncio.create_task(manager.acquire())
    stopping = asyncio.create_task(_first(stop.wait(), manager.stopped.wait()))
    await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    ok = acquiring.done() and not acquiring.cancelled() and acquiring.result()
    if ok:
        await stopping  # serve until SIGINT/SIGTERM
    acquiring.cancel()
    stopping.cancel()
    await manager.release(stop=True)  # this process supervises: leaving means stopping the engine
    return 0 if ok else 1


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()


def engine_stop(args: argparse.Namespace) -> int:
    """Ask the engine's supervisor (and its guard) to stop it; signal nothing we cannot prove.

    The record gets ``stopRequested``: the supervising server or service stops the engine and
    tells its editors; the guard beside the engine stops it even when no supervisor is left."""
    from .engine.procs import alive, signal_group
    from .engine.registry import EngineRegistry

    registry = EngineRegistry()
    with registry.locked() as record:
        engine, supervisor = record.get("engine"), record.get("supervisor")
        if not alive(engine) and not alive(supervisor):
            record.clear()
            print("no engine is running", file=sys.stderr)
            return 0
        record.update(stopRequested=True, state="stopping")
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and alive(engine):
        time.sleep(0.2)
    if alive(engine):
        signal_group(engine, signal.SIGKILL)
    with registry.locked() as current:
        if current.get("stopRequested"):
            current.clear()
    print(f"stopped the engine (pid {(engine or {}).get('pid')})", file=sys.stderr)
    return 0


def engine_status(args: argparse.Namespace) -> int:
    from .engine.procs import alive
    from .engine.registry import EngineRegistry

    record = EngineRegistry().read()
    record.pop("apiKey", None)  # stays in the 0600 record
    record["alive"] = alive(record.get("engine"))
    print(json.dumps(record, indent=2))
    return 0 if record["alive"] else 3


# -- demo ----------------------------------------------------------------------------------------
async def demo(settings: EngineSettings) -> int:
    """The main job on this machine: local engine, then a completion and a chat over real LSP."""
    from .lsp.demo import demo as run_demo

    return await run_demo(settings)
