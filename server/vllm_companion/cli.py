"""Command line: ``vllm-companion lsp`` (the language server), ``complete``, and (cli_engine.py)
``engine``, ``doctor`` and ``demo``; (cli_plan.py) ``plan``; (cli_editor.py) ``editor``.

``stats`` prints how often suggestions were accepted, from the local store (telemetry/).
``complete FILE:LINE:COL`` runs the very pipeline the editor gets (window, prompt, generation,
post-processing) and prints the suggestion: the way to try the product from a terminal.
LINE and COL are 1-based, as editors show them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from . import __version__, paths
from . import cli_checks as checks
from .logs import setup_logging

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-companion", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-file", help="log here instead of stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    lsp = sub.add_parser("lsp", help="speak LSP over stdio (or TCP)")
    lsp.add_argument("--tcp", metavar="HOST:PORT", type=checks.tcp_address, help="listen on TCP instead of stdio")
    lsp.add_argument("--stdio", action="store_true", help="accepted for editors that pass it")

    comp = sub.add_parser("complete", help="print the completion offered at FILE:LINE:COL")
    comp.add_argument("where", metavar="FILE:LINE:COL")
    _backend_args(comp)
    stats = sub.add_parser("stats", help="how often suggestions were accepted (kept on this machine only)")
    stats.add_argument("--days", type=checks.positive_float, default=30, help="look this many days back (default 30)")
    stats.add_argument("--json", action="store_true", help="by language, kind and model, as JSON")
    where = sub.add_parser("editor-path", help="where the editor plugins shipped with this package are")
    where.add_argument("editor", choices=["nvim", "emacs"])
    from . import cli_editor, cli_engine, cli_plan

    cli_engine.add_commands(sub)
    cli_plan.add_commands(sub)
    cli_editor.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_file)
    if args.command == "lsp":
        return run_lsp(args.tcp)
    if args.command == "stats":
        return run_stats(args.days, args.json)
    if args.command == "editor-path":
        print(Path(__file__).resolve().parent / "editors" / args.editor)
        return 0
    if args.command == "editor":
        from . import cli_editor

        return cli_editor.run(args)
    if args.command == "plan":
        from . import cli_plan

        return cli_plan.run(args)
    if args.command in ("engine", "doctor", "demo"):
        from .cli_engine import run

        return run(args)
    path_s, line, col = _parse_where(args.where)
    path = Path(path_s).resolve()
    try:
        args.loaded = (path, path.read_text(encoding="utf-8", errors="replace"), line, col)
    except OSError as exc:
        print(f"vllm-companion: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_complete(args))


def run_stats(days: float, as_json: bool) -> int:
    import json

    from .telemetry import EventStore
    from .telemetry.events import summarize
    from .telemetry.report import table

    store = EventStore()
    events = store.events(since_s=days * 86400)
    if as_json:
        print(json.dumps({by: summarize(events, by) for by in ("language", "kind", "model")}, indent=1))
    else:
        print(f"acceptance over the last {days:g} days ({store.path}):\n\n{table(events)}")
    return 0


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help="OpenAI-compatible base URL (default from settings/env)")
    p.add_argument("--model", help="served model id (default: the endpoint's first)")
    p.add_argument("--api-key")
    p.add_argument("--max-tokens", type=checks.positive_int)
    p.add_argument("--family", type=checks.family, help="prompt family override (see docs/prompts.md)")


def run_lsp(tcp: tuple[str, int] | None) -> int:
    from .lsp.server import CompanionServer

    server = CompanionServer()
    if tcp:
        server.start_tcp(*tcp)
    else:
        server.start_io()
    return 0


def shared_engine() -> dict[str, str]:
    """The running shared engine's endpoint and key from its record (``engine start``), or {}:
    the record is the one the editors use, read through the registry's bounded, sanitized read."""
    from .engine.procs import alive
    from .engine.registry import EngineRegistry
    from .paths import UnsafeDirectory

    try:
        record = EngineRegistry().read()
    except (OSError, UnsafeDirectory, ValueError):
        return {}
    if record.state != "ready" or not alive(record.engine):
        return {}
    found = {"endpoint": record.endpoint, "apiKey": record.api_key}
    return {k: v for k, v in found.items() if v}


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    given = {"endpoint": args.endpoint, "model": args.model, "apiKey": args.api_key}
    if not args.endpoint and not paths.variable("VLLM_COMPANION_ENDPOINT"):
        given = {**shared_engine(), **{k: v for k, v in given.items() if v}}
    backend = {k: v for k, v in given.items() if v}
    completion: dict[str, Any] = {"debounceMs": 0}
    if args.max_tokens:
        completion["maxTokens"] = args.max_tokens
    if args.family:
        completion["family"] = args.family
    return {"backend": backend, "completion": completion}


async def run_complete(args: argparse.Namespace) -> int:
    from .app import build
    from .completion.request import CompletionRequest
    from .config import env_overrides, load_config, redact_url

    path, text, line, col = args.loaded
    config, problems = load_config(env_overrides(), overrides_from(args))
    for problem in problems:
        print(f"vllm-companion: {problem}", file=sys.stderr)
    services = build(config, lambda m, p: log.info("status %s", p), lambda t, e: print(t, file=sys.stderr))
    doc = services.documents.open(path.as_uri(), _language(path), 0, text)
    row = max(0, line - 1)
    col_index = min(max(0, col - 1), len(doc.line(row)))
    try:
        answer = await services.completions.complete(CompletionRequest(doc.uri, row, col_index, automatic=False))
    finally:
        await services.aclose()
    if not answer:
        state, message = services.status.derive()
        print(f"vllm-companion: no completion from {redact_url(config.backend.endpoint)} ({state.value}: {message})."
              " Start the shared engine with `vllm-companion engine start`, or pass --endpoint URL.", file=sys.stderr)
        return 1
    sys.stdout.write(answer + ("\n" if not answer.endswith("\n") else ""))
    return 0


def _parse_where(where: str) -> tuple[str, int, int]:
    parts = where.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise SystemExit(f"vllm-companion: expected FILE:LINE:COL (1-based), got {where!r}")
    return parts[0], int(parts[1]), int(parts[2])


_LANGS = {".py": "python", ".js": "javascript", ".ts": "typescript", ".rs": "rust", ".go": "go", ".c": "c",
          ".cpp": "cpp", ".java": "java", ".rb": "ruby", ".lua": "lua", ".sh": "shellscript"}


def _language(path: Path) -> str:
    return _LANGS.get(path.suffix, path.suffix.lstrip(".") or "plaintext")
