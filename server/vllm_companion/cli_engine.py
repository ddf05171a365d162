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
from collections.abc import Callable
from typing import Any

from . import cli_checks as checks
from .config import EngineSettings, env_overrides, load_config

STOP_WAIT_S = 20.0
STOP_GRACE_S = 5.0  # what a SIGKILLed guard left: SIGTERM, then SIGKILL



def add_commands(sub: Any) -> None:
    eng = sub.add_parser("engine", help="start, stop or inspect the shared local engine")
    eng.add_argument("action", choices=["start", "stop", "status"])
    eng.add_argument("--foreground", action="store_true", help="supervise here until Ctrl-C")
    eng.add_argument("--team", action="store_true", help="serve a team: an API key is required (made once)")
    eng.add_argument("--host", default=None, type=checks.host, help="address to listen on (default 127.0.0.1)")
    eng.add_argument("--port", type=checks.port, default=None, help="port (default: a free one)")
    eng.add_argument("--api-key", default=None,
                     help="the key clients must send; a command line is visible to other users: prefer "
                          "VLLM_COMPANION_ENGINE_KEY or --api-key-file")
    eng.add_argument("--api-key-file", default=None, metavar="PATH", help="read the key from this file's first line")
    eng.add_argument("--replicas", type=checks.positive_int, default=None,
                     help="a fleet: this many engines behind vLLM's router")
    eng.add_argument("--inventory", default=None, help="a JSON file of hosts and GPUs: this host is the Ray head")
    eng.add_argument("--worker", action="append", default=None, metavar="http://HOST:PORT",
                     help="another host's engine to add to the fleet's router (repeatable)")
    _engine_args(eng)
    doc = sub.add_parser("doctor", help="hardware, launch plan, engine install and health, FIM tokens")
    _engine_args(doc, model_type=checks.known_model)
    doc.add_argument("--endpoint", help="check this OpenAI-compatible endpoint too")
    doc.add_argument("--calibrate", action="store_true",
                     help="without a GPU: start each installed CPU engine once, measure it, cache the rates")
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
    demo = sub.add_parser("demo", help="start the local engine, then a completion and a chat round trip")
    _engine_args(demo)


def _engine_args(p: argparse.ArgumentParser, model_type: Callable[[str], str] = str) -> None:
    p.add_argument("--kind", choices=["vllm", "llamacpp"], help="engine (default vllm)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"])
    p.add_argument("--model", type=model_type, help="model to serve (default: from the sizing guide)")
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

        return asyncio.run(doctor(engine_settings(args), args.endpoint, args.kind, args.calibrate))
    return asyncio.run(demo(engine_settings(args)))


def what_if_command(args: argparse.Namespace) -> int:
    from .engine.hardware import read_gpus
    from .engine.whatif import BadSpec, parse_gpu, what_if

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
    from .engine.plan import plan_launch

    overrides = {k: v for k, v in (("kind", args.kind), ("model", args.model), ("maxModelLen", args.context)) if v}
    plan = plan_launch(gpus, overrides, args.cpu or facts_here())
    print(f"plan: {plan.describe()}\nwhy: {plan.reason}")
    if plan.arithmetic:
        print(f"arithmetic: {plan.arithmetic}")
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
    """The service (or, ``--foreground``, the supervisor itself), with the same key rules either way."""
    if args.api_key:
        return _start_again_without_key(args)
    from .engine.registry import EngineRegistry, runtime_dir

    key, problem = _team_key(args)
    if problem:
        print(f"vllm-companion: {problem}", file=sys.stderr)
        return 2
    if args.foreground:
        settings = engine_settings(args)
        return asyncio.run(_foreground(settings.model_copy(update={"api_key": key}) if key else settings))
    argv = [sys.executable, "-m", "vllm_companion", "engine", "start", "--foreground", "--keep-alive",
            *_start_options(args)]
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
            print(record.get("frontUrl") or record["endpoint"])  # a team's clients come through the front
            return 0
        time.sleep(1)
    print(f"vllm-companion: the engine did not become ready; see {log_path}", file=sys.stderr)
    return 1


def _start_options(args: argparse.Namespace) -> list[str]:
    """``engine start``'s options with values, for the service's command line: never the key."""
    given = (("kind", args.kind), ("device", args.device), ("model", args.model), ("host", args.host),
             ("port", args.port), ("replicas", args.replicas),
             ("inventory", os.path.abspath(args.inventory) if args.inventory else None))
    return [f"--{k}={v}" for k, v in given if v] + [f"--worker={url}" for url in args.worker or []]


def _start_again_without_key(args: argparse.Namespace) -> int:
    """``--api-key KEY`` would stay in /proc/<pid>/cmdline, readable by every local user, for as
    long as this process lives (with ``--foreground``, as long as the engine): run the same start
    again in this process (``execve``: same PID, new command line) with the key in the environment."""
    print("vllm-companion: a key on the command line is visible to other users while it is there: prefer "
          "VLLM_COMPANION_ENGINE_KEY or --api-key-file (moving it to the environment now)", file=sys.stderr)
    flags = [flag for flag, on in (("--foreground", args.foreground), ("--team", args.team),
                                   ("--keep-alive", args.keep_alive)) if on]
    logs = ["--log-level", getattr(args, "log_level", "info")]
    logs += ["--log-file", args.log_file] if getattr(args, "log_file", None) else []
    argv = [sys.executable, "-m", "vllm_companion", *logs, "engine", "start", *flags, *_start_options(args)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, {**os.environ, "VLLM_COMPANION_ENGINE_KEY": args.api_key})


def _given_key(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The key from ``--api-key-file`` (its first line, at most 4 KiB read) or the environment."""
    if not args.api_key_file:
        return os.environ.get("VLLM_COMPANION_ENGINE_KEY") or None, None
    try:
        with open(args.api_key_file, "rb") as f:
            lines = f.read(4096).decode("utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"--api-key-file: cannot read {args.api_key_file}: {exc.__class__.__name__}"
    key = lines[0].strip() if lines else ""
    return (key, None) if key else (None, f"--api-key-file {args.api_key_file} is empty")


def _team_key(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The key a team engine requires (given, from the environment, stored, or made and shown
    once), or why the start is refused: never beyond loopback without a key. With a key, the
    engine (or a fleet's router) listens on loopback and the front on ``--host`` (engine/front.py)."""
    from .engine.registry import is_loopback, runtime_dir, write_private

    host = args.host or "127.0.0.1"
    key, problem = _given_key(args)
    if problem:
        return None, problem
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
    from .engine.launch import Fronted
    from .engine.manager import EngineManager

    def event(e: Any) -> None:
        print(f"[{e.state.value}] {e.message}", file=sys.stderr, flush=True)

    def endpoint(url: str, model: str, key: str | None) -> None:
        served = manager.supervisor
        print(served.url if isinstance(served, Fronted) else url, flush=True)  # a team's clients: the front

    manager = EngineManager(settings, event, endpoint)
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
    from .engine.procs import alive, is_guard, signal_group, sweep
    from .engine.registry import EngineRegistry

    registry = EngineRegistry()
    with registry.locked() as record:
        engine, supervisor, front = record.get("engine"), record.get("supervisor"), record.get("front")
        running = is_guard(engine) or alive(supervisor) or is_guard(front)
        if running:
            record.update(stopRequested=True, state="stopping")
        else:
            record.clear()
    if not running:  # but a guard SIGKILLed with its supervisor may have left its engine's processes
        left = [p.pid for process in (engine, front) for p in sweep(process, STOP_GRACE_S)]
        print("no engine is running" + (f" (still running after SIGKILL: {left})" if left else ""), file=sys.stderr)
        return 0
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and (is_guard(engine) or is_guard(front)):
        time.sleep(0.2)
    for process in (engine, front):  # the front (a team's) runs under a guard of its own
        if not signal_group(process, signal.SIGKILL):
            sweep(process, STOP_GRACE_S)  # its guard is gone (or was SIGKILLed): what it left
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
