"""tree-sitter parses with a budget: a pathological file costs a quarter of a second, not the server.

tree-sitter's parse holds the GIL for as long as it runs, and its GLR parser has inputs where that
time explodes: a 24 KB TypeScript file of ``a<b>(c)<`` repeated (generic call or comparison?)
froze every request of the server for 11.7 s, and the time grows about 4x per doubling (issue 19;
here: 4 KB 0.14 s, 8 KB 0.42 s, 12 KB 0.99 s). py-tree-sitter 0.26 has no ``timeout_micros`` any
more; its ``progress_callback`` (honoured only with a read callback, not with a bytestring) is
called about every hundred parse steps and cancels the parse when it answers True, which raises
``ValueError``. Being Python, the callback is also where the parsing thread gives the GIL back:
measured, the longest stall of another thread fell from the whole parse (213 ms) to 7 ms, and
the callback costs nothing measurable on ordinary files (264 KB of Python: 28 ms either way).

So every parse here:

- runs with a time budget (``BUDGET_S``) and a byte cap per language (``MAX_BYTES``: TypeScript's
  ambiguous generics are where the blow-up was measured);
- is the only parse of its file at the moment (``key``: a second request for it is skipped, not
  queued) and one of at most ``MAX_PARSES`` at once, all files together;
- after running out of budget, leaves that file alone for ``BACKOFF_S``: a file being typed in is
  not parsed again on every keystroke only to be cancelled again;
- runs in the caller's thread, which is never the event loop's (gather.py runs sources in threads).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

log = logging.getLogger(__name__)
BUDGET_S = 0.25
MAX_BYTES = {"typescript": 64_000, "tsx": 64_000, "javascript": 128_000}
DEFAULT_MAX_BYTES = 256_000  # privacy.MAX_FILE_BYTES: no file read is larger
MAX_PARSES, BACKOFF_S, REMEMBERED = 2, 30.0, 256
CHUNK = 64 * 1024

_slots = threading.BoundedSemaphore(MAX_PARSES)
_lock = threading.Lock()
_running: set[str] = set()  # files being parsed now
_slow: OrderedDict[str, float] = OrderedDict()  # file -> when it may be parsed again (monotonic)


@functools.cache
def language(grammar: str) -> Any:
    """The tree-sitter language for a grammar name, or None when the pack is not installed."""
    try:
        from tree_sitter_language_pack import get_language
    except ImportError:  # pragma: no cover - a declared dependency; degrade, do not crash
        log.warning("tree-sitter-language-pack is not installed: no imported definitions")
        return None
    return get_language(grammar)  # type: ignore[arg-type]


def parse(grammar: str, source: bytes, key: str = "", budget_s: float = BUDGET_S) -> Any:
    """The root node of ``source``, or None: no grammar, over the language's byte cap, the file
    (``key``) already being parsed or backing off, no parse slot within the budget, or the budget
    spent."""
    lang = language(grammar)
    if lang is None or len(source) > MAX_BYTES.get(grammar, DEFAULT_MAX_BYTES) or not _claim(key):
        return None
    try:
        if not _slots.acquire(timeout=budget_s):
            return None
        try:
            return _bounded(lang, source, budget_s)
        except ValueError:  # cancelled by the budget (py-tree-sitter: "Parsing failed")
            log.info("parse of %s (%s, %d bytes) over its %.0f ms budget: skipped for %.0f s",
                     key or "a document", grammar, len(source), budget_s * 1000, BACKOFF_S)
            _back_off(key)
            return None
        finally:
            _slots.release()
    finally:
        _release(key)


def _bounded(lang: Any, source: bytes, budget_s: float) -> Any:
    from tree_sitter import Parser

    end = time.monotonic() + budget_s

    def read(offset: int, _point: Any) -> bytes:
        return source[offset : offset + CHUNK]

    def over(*_state: Any) -> bool:  # True cancels the parse
        return time.monotonic() > end

    return Parser(lang).parse(read, progress_callback=over).root_node  # a parser per parse: threads


def _claim(key: str) -> bool:
    if not key:
        return True
    with _lock:
        until = _slow.get(key)
        if key in _running or (until is not None and time.monotonic() < until):
            return False
        _slow.pop(key, None)
        _running.add(key)
        return True


def _release(key: str) -> None:
    with _lock:
        _running.discard(key)


def _back_off(key: str) -> None:
    if not key:
        return
    with _lock:
        _slow[key] = time.monotonic() + BACKOFF_S
        _slow.move_to_end(key)
        while len(_slow) > REMEMBERED:
            _slow.popitem(last=False)
