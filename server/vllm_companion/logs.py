"""Logging to stderr or a file, never stdout (stdout is the LSP channel).

Lines carry the request id (``[c12]``) and per-stage timings where the code logs them.

One line per failure at the default level (issue 23, point 5): the editor shows stderr in its
output panel, and a chat to a closed port wrote a five-level chained traceback there. Below debug,
a record's traceback becomes ``(Type: message)`` on its own line, and pygls's record of a handler
that raised is left out: pygls logs it with its traceback and then hands the same exception to
``CompanionServer.report_server_error``, which writes the one line (an error answer the client
got, whose cause the service logged where it happened, only at debug). At debug
(``--log-level debug`` or ``log.level``) every traceback is written whole. tests/e2e/test_logs.py
checks both over real stdio.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
OURS = "vllm_companion"
# pygls's module that logs a failed handler with its traceback before reporting it to the server.
PYGLS_HANDLERS = "pygls.protocol.json_rpc"


def debugging() -> bool:
    """Whether our logger is at debug now (``log.level`` may change it after start-up)."""
    return logging.getLogger(OURS).isEnabledFor(logging.DEBUG)


def summary(exc: BaseException | None) -> str:
    """An exception as one line: its type and the first line of its message."""
    if exc is None:
        return ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class OneLine(logging.Formatter):
    """Below debug, a record's traceback is folded into its line as ``(Type: message)``."""

    def format(self, record: logging.LogRecord) -> str:
        if (record.exc_info or record.stack_info) and not debugging():
            exc = record.exc_info[1] if record.exc_info else None
            record = logging.makeLogRecord(record.__dict__)  # other handlers keep the original
            note = summary(exc)
            record.msg, record.args = record.getMessage() + (f" ({note})" if note else ""), None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return super().format(record)


def without_handler_tracebacks(record: logging.LogRecord) -> bool:
    """Below debug, drop pygls's record of a raising handler: report_server_error logs it once."""
    return debugging() or not (record.name == PYGLS_HANDLERS and record.exc_info)


def setup_logging(level: str = "info", file: str | None = None) -> None:
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine(FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(without_handler_tracebacks)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(OURS).setLevel(level.upper())
