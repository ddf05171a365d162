"""Attacks on ``loops.json``, the loop totals ``doctor`` reports (repetition.py), kept in the
runtime folder: whatever sits at its path, a loop the guard cut is counted and the request goes
on at once, nothing outside the file is written, and nothing at the path is read unbounded."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from vllm_companion.repetition import LoopHealth, read_totals


def test_a_symlink_planted_at_the_store_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    store = tmp_path / "loops.json"
    store.symlink_to(victim)
    LoopHealth(store=store).record("m")
    assert victim.read_text() == "precious"
    assert not store.is_symlink() and json.loads(store.read_text()) == {"m": 1}
    assert store.stat().st_mode & 0o777 == 0o600


def test_a_fifo_planted_at_the_store_does_not_hang_the_request(tmp_path: Path) -> None:
    store = tmp_path / "loops.json"
    os.mkfifo(store)
    done = threading.Event()
    threading.Thread(target=lambda: (LoopHealth(store=store).record("m"), done.set()), daemon=True).start()
    assert done.wait(5), "record() blocked on a FIFO"
    assert read_totals(store) == {"m": 1}


def test_a_huge_store_is_not_read_whole(tmp_path: Path) -> None:
    store = tmp_path / "loops.json"
    store.write_text('{"m": 1, "pad": "' + "x" * (64 << 20) + '"}')
    t0 = time.monotonic()
    assert read_totals(store) == {}
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("text", [
    '{"m": "many"}', '{"m": null}', '{"m": -3}', '{"m": true}', '{"m": 1.5}', '[1, 2]', "not json",
    "[" * 100_000, '{"m": ' + "9" * 5000 + "}", b"\xff\xfe".decode("latin-1"),
])
def test_garbage_in_the_store_never_fails_a_request(tmp_path: Path, text: str) -> None:
    store = tmp_path / "loops.json"
    store.write_text(text, encoding="latin-1")
    assert LoopHealth(store=store).record("m") == 1
    assert read_totals(store)["m"] == 1


def test_a_store_in_a_folder_that_vanished_costs_the_request_nothing(tmp_path: Path) -> None:
    health = LoopHealth(store=tmp_path / "gone" / "loops.json")
    assert health.record("m") == 1 and health.total["m"] == 1



def test_a_count_too_large_to_write_back_never_fails_a_request(tmp_path: Path) -> None:
    """4,300 digits parse (Python's limit), but one more loop made 4,301, which json.dumps
    refused with ValueError: the request that cut the loop failed."""
    store = tmp_path / "loops.json"
    store.write_text('{"m": ' + "9" * 4300 + ', "n": 1e308, "o": NaN, "p": 9007199254740993}')
    assert LoopHealth(store=store).record("m") == 1
    assert read_totals(store) == {"m": 1}


def test_model_names_that_would_rewrite_the_terminal_are_dropped(tmp_path: Path) -> None:
    """``doctor`` prints the names: an escape sequence there retitles or clears the terminal."""
    store = tmp_path / "loops.json"
    store.write_text(json.dumps({"\x1b]0;owned\x07": 5, "\x1b[2J": 1, "x" * 10_000: 1, "": 2, "ok": 2}))
    assert read_totals(store) == {"ok": 2}


CONCURRENT = ("import sys; from pathlib import Path; from vllm_companion.repetition import LoopHealth; "
              "h = LoopHealth(store=Path(sys.argv[1])); [h.record('m') for _ in range(40)]")


def test_two_servers_counting_at_once_never_corrupt_the_store(tmp_path: Path) -> None:
    """Read, add, write: an update may be lost, the file is never half written or left behind."""
    import subprocess
    import sys

    store = tmp_path / "loops.json"
    writers = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(store)]) for _ in range(3)]
    while any(w.poll() is None for w in writers):
        assert isinstance(json.loads(store.read_bytes() if store.exists() else b"{}"), dict)  # always whole
    assert all(w.wait(60) == 0 for w in writers)
    assert 40 <= read_totals(store)["m"] <= 120
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loops.json"]
