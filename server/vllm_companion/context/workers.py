"""The context sources' threads: at most ``size`` daemon threads, kept between completions.

A thread started per source per completion cost 0.3 ms of the event loop each
(``Thread.start`` waits, under the GIL, for the new thread to report in): with the two default
sources, half of the server's added time per completion on scripts/bench_overhead.py
(docs/performance.md, issue 21). Here a source is a queue put; a thread idle for ``IDLE_S`` ends.

The rules of the threads they replace hold: daemon threads (one stuck on a hung file system never
holds the server's exit; an executor's workers are joined at exit), at most ``size`` jobs at once,
and a job past that is refused, never queued (the caller answers without that source). A stuck
job keeps its thread, as it kept its slot before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

IDLE_S = 60.0  # an idle thread ends after this long; the next job starts one again


class Workers:
    def __init__(self, size: int, name: str = "context") -> None:
        self.size, self.name = size, name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the counts and every put (see _serve)
        self._threads = 0  # alive
        self._free = 0  # alive and not owing a job

    def submit(self, job: Callable[[], None]) -> bool:
        """Run ``job()`` on a thread of the pool; False, and nothing run, when all ``size`` are busy.
        ``job`` must not raise (it reports its own outcome)."""
        with self._lock:
            if self._free:
                self._free -= 1
            elif self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._serve, name=self.name, daemon=True).start()
            else:
                return False
            self._jobs.put(job)  # under the lock: a thread timing out sees it (``_serve``)
        return True

    @property
    def busy(self) -> int:
        with self._lock:
            return self._threads - self._free

    def _serve(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():  # nothing was put since: this thread may end
                        self._threads -= 1
                        self._free -= 1
                        return
                continue  # a job arrived as the wait ended: it is this thread's to run
            job()
            with self._lock:
                self._free += 1
