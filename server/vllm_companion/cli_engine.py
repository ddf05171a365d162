"""``vllm-companion engine start|stop|status``, ``doctor`` and ``demo`` (lsp/demo.py: the
README's first command, an LSP client of our own server). ``plan`` is cli_plan.py's; the team's
key, cli_team.py's."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from . import cli_checks as checks
from . import paths
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
    eng.add_argument("--team-max-tokens", type=checks.positive_int, default=None, metavar="N",
                     help="a team server: the most tokens one request may generate (default 4096)")
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
             "inventory": getattr(args, "inventory", None), "teamMaxTokens": getattr(args, "team_max_tokens", None)}
    config, problems = load_config(env_overrides(), {"engine": {k: v for k, v in given.items() if v is not None}})
    for problem in problems:
        print(f"vllm-companion: {problem}", file=sys.stderr)
    return config.engine


def run(args: argparse.Namespace) -> int:
    if args.command == "engine":
        return {"start": engine_start, "stop": engine_stop, "status": engine_status}[args.action](args)
    if args.command == "doctor":
        from .doctor import doctor

        return asyncio.run(doctor(engine_settings(args), args.endpoint, args.kind, args.calibrate))
    return asyncio.run(demo(engine_settings(args)))


# -- engine --------------------------------------------------------------------------------------
def engine_start(args: argparse.Namespace) -> int:
    """The service (or, ``--foreground``, the supervisor itself), with the same key rules either way."""
    if args.api_key:
        return _start_again_without_key(args)
    from .cli_team import team_key
    from .engine.registry import EngineRegistry, runtime_dir

    key, problem = team_key(args)
    if problem:
        print(f"vllm-companion: {problem}", file=sys.stderr)
        return 2
    if args.foreground:
        settings = engine_settings(args)
        return asyncio.run(_foreground(settings.model_copy(update={"api_key": key}) if key else settings))
    argv = [sys.executable, "-m", "vllm_companion", "engine", "start", "--foreground", "--keep-alive",
            *_start_options(args)]
    env = paths.child_env({"VLLM_COMPANION_ENGINE_KEY": key} if key else {})  # never on a command line
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
        if record.state == "ready":
            print(record.front_url or record.endpoint)  # a team's clients come through the front
            return 0
        time.sleep(1)
    print(f"vllm-companion: the engine did not become ready; see {log_path}", file=sys.stderr)
    return 1


def _start_options(args: argparse.Namespace) -> list[str]:
    """``engine start``'s options with values, for the service's command line: never the key."""
    given = (("kind", args.kind), ("device", args.device), ("model", args.model), ("host", args.host),
             ("port", args.port), ("replicas", args.replicas), ("team-max-tokens", args.team_max_tokens),
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
    os.execve(sys.executable, argv, paths.child_env({"VLLM_COMPANION_ENGINE_KEY": args.api_key}))


async def _foreground(settings: EngineSettings) -> int:
    from .engine.manager import EngineManager

    def event(e: Any) -> None:
        print(f"[{e.state.value}] {e.message}", file=sys.stderr, flush=True)

    def endpoint(url: str, model: str, key: str | None) -> None:
        front = manager.supervisor.extras().front_url if manager.supervisor else None
        print(front or url, flush=True)  # a team's clients: the front

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
    from .engine import record as rec
    from .engine.procs import alive, is_guard
    from .engine.registry import EngineRegistry
    from .engine.signals import signal_group, sweep

    def running(record: rec.EngineRecord) -> bool:
        return alive(record.supervisor) or any(is_guard(g) for g in record.guards)

    registry = EngineRegistry()
    before, after = registry.change(lambda r: rec.stopping(r) if running(r) else rec.EMPTY)
    engine, guards = before.engine, before.guards  # the engine's, a team's front's, a next-edit process's
    if not after.kept:  # but a guard SIGKILLed with its supervisor may have left its engine's processes
        left = [p.pid for process in guards for p in sweep(process, STOP_GRACE_S)]
        print("no engine is running" + (f" (still running after SIGKILL: {left})" if left else ""), file=sys.stderr)
        return 0
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline and any(is_guard(g) for g in guards):
        time.sleep(0.2)
    for process in guards:  # the front (a team's) and the next-edit process run under guards of their own
        if not signal_group(process, signal.SIGKILL):
            sweep(process, STOP_GRACE_S)  # its guard is gone (or was SIGKILLed): what it left
    registry.change(lambda current: rec.cleared_if(current, current.stop_requested))
    print(f"stopped the engine (pid {engine.pid if engine else None})", file=sys.stderr)
    return 0


def engine_status(args: argparse.Namespace) -> int:
    from .engine.procs import alive
    from .engine.record import to_json
    from .engine.registry import EngineRegistry

    record = EngineRegistry().read()
    shown = {k: v for k, v in to_json(record).items() if k != "apiKey"}  # the key stays in the 0600 record
    shown["alive"] = alive(record.engine)
    print(json.dumps(shown, indent=2))
    return 0 if shown["alive"] else 3


# -- demo ----------------------------------------------------------------------------------------
async def demo(settings: EngineSettings) -> int:
    """The main job on this machine: local engine, then a completion and a chat over real LSP."""
    from .lsp.demo import demo as run_demo

    return await run_demo(settings)
