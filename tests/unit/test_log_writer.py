"""Log lines leave the request path (logs.py, issue 21 point 9): queued, written by one thread,
dropped and counted when the queue is full, drained at exit within a bound."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vllm_companion import logs


class Stuck(logging.Handler):
    """An output whose reader stopped reading: every write waits for ``opened``."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.opened.wait(10)
        self.lines.append(self.format(record))


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"vllm_companion.test_log_writer.{id(handler)}")
    logger.propagate, logger.level = False, logging.INFO
    logger.handlers[:] = [handler]
    return logger


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ours = logging.getLogger(logs.OURS).level
    yield
    logs.stop_logging()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(logs.OURS).setLevel(ours)


def test_a_stuck_output_never_blocks_the_caller_and_a_full_queue_is_counted() -> None:
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(4)
    handler, out = logs.Dropping(records), Stuck()
    writer = logs.Writer(records, out)
    writer.start()
    logger = _logger(handler)
    began = time.monotonic()
    for i in range(50):
        logger.info("line %d", i)
    assert time.monotonic() - began < 1.0  # 50 lines against an output that writes nothing
    assert handler.dropped >= 40
    out.opened.set()
    deadline = time.monotonic() + 5
    while not records.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    logger.info("after")  # room again: the count goes first, as a line of its own
    writer.stop()
    assert any("log lines dropped: the log writer fell behind" in line for line in out.lines)
    assert out.lines[-1] == "after" and handler.dropped == 0


def test_exit_waits_a_bounded_time_for_a_stuck_writer() -> None:
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(2)
    handler, out = logs.Dropping(records), Stuck()
    writer = logs.Writer(records, out)
    writer.start()
    logger = _logger(handler)
    for i in range(10):
        logger.info("line %d", i)
    began = time.monotonic()
    writer.stop()
    assert time.monotonic() - began < 2 * logs.DRAIN_S + 1
    out.opened.set()


def test_queued_lines_are_written_in_the_format_at_exit(tmp_path: Path, root_restored: None) -> None:
    file = tmp_path / "server.log"
    logs.setup_logging("info", str(file))
    log = logging.getLogger("vllm_companion.test")
    log.info("done in %d ms", 3)
    try:
        raise ValueError("bad value\nsecond line")
    except ValueError:
        log.exception("request failed")
    logs.stop_logging()
    lines = file.read_text().splitlines()
    assert lines[0].endswith(" INFO vllm_companion.test: done in 3 ms")
    assert lines[1].endswith(" ERROR vllm_companion.test: request failed (ValueError: bad value)")
    assert len(lines) == 2  # below debug, the traceback is folded into its line


def test_arguments_are_formatted_when_logged_not_when_written(tmp_path: Path, root_restored: None) -> None:
    file = tmp_path / "server.log"
    logs.setup_logging("info", str(file))
    items = ["first"]
    logging.getLogger("vllm_companion.test").info("items %s", items)
    items.append("changed later")
    logs.stop_logging()
    assert file.read_text().rstrip().endswith("items ['first']")
