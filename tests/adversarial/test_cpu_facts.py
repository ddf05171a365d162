"""What the CPU plan reads from the machine: ``/proc/cpuinfo`` and ``/proc/meminfo``
(engine/planning/hardware.py), the calibration cache (engine/calibrate.py) and the Hugging Face cache
listing (engine/cpu_local.py). Each read is bounded in bytes and time, a stored file is trusted
only when it is a small regular file of the user's, for this machine, with sane numbers; anything
else is ignored, never an exception and never a different plan."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vllm_companion.engine.calibrate import MAX_CACHE_BYTES, machine_key, read_calibration, write_calibration
from vllm_companion.engine.cpu_local import MAX_ENTRIES, cached_code_models
from vllm_companion.engine.planning.cpu import Rates
from vllm_companion.engine.planning.hardware import MAX_FLAGS, PROC_READ_BYTES, Cpu, read_cpu

CPU = Cpu("AMD EPYC", frozenset({"avx2", "avx512f"}), 2, 20.0)


def _cpu(tmp_path: Path, cpuinfo: bytes, meminfo: bytes = b"MemAvailable: 1048576 kB\n") -> Cpu:
    (tmp_path / "cpuinfo").write_bytes(cpuinfo)
    (tmp_path / "meminfo").write_bytes(meminfo)
    return read_cpu(tmp_path / "cpuinfo", tmp_path / "meminfo", cores=2)


def test_huge_cpuinfo_is_read_only_up_to_its_cap(tmp_path: Path) -> None:
    flags = " ".join(f"f{i}" for i in range(2_000_000))  # about 17 MB on one line
    start = time.monotonic()
    cpu = _cpu(tmp_path, f"model name : X\nflags : avx512f {flags}\n".encode())
    assert time.monotonic() - start < 1.0
    assert "avx512f" in cpu.flags and len(cpu.flags) <= MAX_FLAGS
    assert PROC_READ_BYTES <= 64 * 1024


def test_garbage_cpuinfo_gives_no_flags_and_no_exception(tmp_path: Path) -> None:
    cpu = _cpu(tmp_path, os.urandom(200_000) + b"\xff\xfe\x00flags: \x00avx512f\n", os.urandom(5000))
    assert cpu.flags <= {"avx512f"} and cpu.mem_gib == 0.0 and cpu.cores == 2


def test_cpuinfo_flags_cannot_smuggle_odd_tokens_or_terminal_escapes(tmp_path: Path) -> None:
    text = "model name : EPYC\x1b]0;owned\x07\x1b[31m" + "A" * 500 + "\nflags : avx2 AVX512F avx512f\x1b[0m " + \
           "x" * 100 + " ../../etc\n"
    cpu = _cpu(tmp_path, text.encode())
    assert cpu.flags == {"avx2"} and not cpu.avx512  # the escaped token is not avx512f
    assert cpu.model.isprintable() and "\x1b" not in cpu.model and len(cpu.model) <= 80


def test_meminfo_with_absurd_numbers_gives_zero(tmp_path: Path) -> None:
    for meminfo in (b"MemAvailable: 99999999999999999999999999 kB\n", b"MemAvailable: -5 kB\n", b"MemAvailable:\n"):
        assert _cpu(tmp_path, b"flags : avx2\n", meminfo).mem_gib == 0.0


def test_a_fifo_in_place_of_cpuinfo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    start = time.monotonic()
    cpu = read_cpu(tmp_path / "fifo", tmp_path / "fifo", cores=1)
    assert time.monotonic() - start < 1.0 and cpu.flags == frozenset() and cpu.mem_gib == 0.0


def _good(tmp_path: Path) -> Path:
    return write_calibration(CPU, {"vllm": Rates(800.0, 50.0, "x"), "llamacpp": Rates(300.0, 70.0, "x")},
                             tmp_path / "cal.json")


def test_a_calibration_cache_that_is_a_symlink_is_ignored(tmp_path: Path) -> None:
    real = _good(tmp_path)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert read_calibration(CPU, real) and read_calibration(CPU, link) == {}


def test_a_planted_symlink_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "cal.json").symlink_to(victim)
    _good(tmp_path)
    assert victim.read_text() == "keep" and not (tmp_path / "cal.json").is_symlink()


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b"[" * 100_00 + b"]" * 100_00, b"null",
                                  b'{"version": 1}', b'{"version": 1, "machine": 5, "engines": []}'])
def test_a_garbage_calibration_cache_is_ignored(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "cal.json"
    path.write_bytes(body)
    os.chmod(path, 0o600)
    assert read_calibration(CPU, path) == {}


def test_a_huge_calibration_cache_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    body = {"version": 1, "machine": machine_key(CPU), "pad": "x" * MAX_CACHE_BYTES,
            "engines": {"vllm": {"prefill_tps": 9e5, "decode_tps": 9e5}}}
    path.write_text(json.dumps(body))
    assert read_calibration(CPU, path) == {}


def test_a_calibration_cache_from_another_machine_is_ignored(tmp_path: Path) -> None:
    path = _good(tmp_path)
    for other in (Cpu("AMD EPYC", frozenset({"avx2"}), 2, 20.0), Cpu("Intel Xeon", CPU.flags, 2, 20.0),
                  Cpu("AMD EPYC", CPU.flags, 16, 20.0)):
        assert read_calibration(other, path) == {}
    assert set(read_calibration(Cpu("AMD EPYC", CPU.flags, 2, 3.0), path)) == {"vllm", "llamacpp"}  # memory varies


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -5.0, 0.0, 1e12, True, "800", None, [800]])
def test_a_calibration_cache_with_insane_rates_is_ignored(tmp_path: Path, value: object) -> None:
    path = tmp_path / "cal.json"
    body = {"version": 1, "machine": machine_key(CPU), "engines": {"vllm": {"prefill_tps": value, "decode_tps": 50}}}
    path.write_text(json.dumps(body))
    assert read_calibration(CPU, path) == {}


def test_a_fifo_or_a_folder_at_the_calibration_path_is_ignored(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    start = time.monotonic()
    assert read_calibration(CPU, tmp_path / "fifo") == {} and read_calibration(CPU, tmp_path / "dir") == {}
    assert time.monotonic() - start < 1.0


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give the file to another user")
def test_a_calibration_cache_owned_by_someone_else_is_ignored(tmp_path: Path) -> None:
    path = _good(tmp_path)
    os.chown(path, 65534, 65534)
    assert read_calibration(CPU, path) == {}


def test_a_hub_cache_of_thousands_of_folders_is_listed_bounded(tmp_path: Path) -> None:
    for i in range(MAX_ENTRIES + 500):
        (tmp_path / f"models--junk--m{i:05d}").mkdir()
    looped = tmp_path / "models--Qwen--Qwen2.5-Coder-0.5B"
    looped.mkdir()
    (looped / "snapshots").symlink_to(looped / "snapshots")  # a link loop where snapshots should be
    start = time.monotonic()
    assert cached_code_models(tmp_path) == ()
    assert time.monotonic() - start < 2.0
