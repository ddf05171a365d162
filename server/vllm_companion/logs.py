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

Off the request path (issue 21, point 9): a line written to the editor's stderr pipe cost
0.2-0.8 ms on a loaded machine, and the ``done in`` line of every completion was written before
its answer was sent. Records are formatted where they are logged (their arguments may change
later) and queued (``QUEUE_SIZE``, bounded); one writer thread (``QueueListener``) writes them to
stderr or the log file. A full queue drops the record and counts it, never blocks the server; the
count is written as a line of its own once there is room. The writer is drained at exit
(``stop_logging``: atexit, and ``CompanionServer.exit_now`` before ``os._exit``), waiting at most
``DRAIN_S`` for a reader that stopped reading.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
from logging.handlers import QueueHandler, QueueListener

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
OURS = "vllm_companion"
# pygls's module that logs a failed handler with its traceback before reporting it to the server.
PYGLS_HANDLERS = "pygls.protocol.json_rpc"
QUEUE_SIZE = 10_000  # records waiting for the writer; past that they are dropped and counted
DRAIN_S = 2.0  # at exit, the longest wait for the writer to write what is queued


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


class Dropping(QueueHandler):
    """A ``QueueHandler`` that never blocks: a full queue drops the record and counts it."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self.dropped = 0  # since the last note, under the handler's lock (Handler.handle)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        prepared: logging.LogRecord = super().prepare(record)
        prepared.stack_info = None  # folded into the message by our formatter (3.11 keeps it)
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self.dropped:
                note = logging.makeLogRecord({"name": OURS, "levelno": logging.WARNING, "levelname": "WARNING",
                                              "msg": f"{self.dropped} log lines dropped: the log writer fell behind"})
                self.queue.put_nowait(note)
                self.dropped = 0
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class Writer(QueueListener):
    """The one thread that writes log lines; ``stop`` waits at most ``DRAIN_S``."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None], output: logging.Handler) -> None:
        super().__init__(records, output)
        self.records = records

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        try:
            self.records.put(None, timeout=DRAIN_S)  # QueueListener's sentinel
        except queue.Full:
            return  # the writer is stuck on its output: leaving matters more than the lines
        thread.join(DRAIN_S)


_writer: Writer | None = None
_writer_lock = threading.Lock()


def stop_logging() -> None:
    """Write what is queued, then end the writer (atexit, and before ``os._exit``)."""
    global _writer
    with _writer_lock:
        writer, _writer = _writer, None
    if writer is not None:
        writer.stop()


def _output(file: str | None) -> logging.Handler:
    """Where lines go: ``file``, else stderr; formatted with ``FORMAT`` (the message itself was
    formatted, tracebacks folded, by ``OneLine`` when the record was queued)."""
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    return handler


def setup_logging(level: str = "info", file: str | None = None) -> None:
    global _writer
    stop_logging()
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUE_SIZE)
    handler = Dropping(records)
    handler.setFormatter(OneLine("%(message)s"))
    handler.addFilter(without_handler_tracebacks)
    writer = Writer(records, _output(file))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger(OURS).setLevel(level.upper())
    with _writer_lock:
        _writer = writer
    writer.start()


atexit.register(stop_logging)
