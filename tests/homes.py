"""The tests' own state, cache, runtime and config folders, and the check that the user's own
were left alone (tests/conftest.py uses both; issue 21, point 8).

The user's folders are what ``vllm_companion.paths`` resolves before the tests move anything:
``~/.local/state/vllm-companion``, ``~/.cache/vllm-companion`` (with ``run`` inside it),
``$XDG_RUNTIME_DIR/vllm-companion``, ``~/.config/vllm-companion`` or where the user's variables
put them. ``snapshot`` records each entry's type, size and modification time (bounded: a cache of
converted models holds a few dozen files); ``changed`` names what differs. A language server of
the user's own running beside the tests (an editor open) writes there too, and shows up.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from vllm_companion import paths

FOLDERS = {"XDG_STATE_HOME": "state", "XDG_CACHE_HOME": "cache", "XDG_RUNTIME_DIR": "run",
           "XDG_CONFIG_HOME": "config"}
UNSET = ("VLLM_COMPANION_CACHE",)  # it moves the runtime folder too: tests that want it set it
MAX_ENTRIES = 20_000

Stamp = tuple[int, int, int]  # file type, size, mtime (ns)


def user_folders() -> list[Path]:
    """This program's folders as the environment the tests started in names them."""
    found = [paths.state_dir(), paths.cache_dir(), paths.runtime_dir(), paths.config_dir()]
    return list(dict.fromkeys(found))


def pin_third_party_caches() -> None:
    """Keep the Hugging Face and vLLM caches where they resolve now, whatever ``XDG_CACHE_HOME``
    the tests set (huggingface_hub and vLLM derive theirs from it)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ.setdefault("HF_HOME", str(cache / "huggingface"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache / "vllm"))


def scratch_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="vllm-companion-tests-"))


def folders_under(root: Path) -> dict[str, str]:
    """The variables that put every folder of this program under ``root`` (created, 0700)."""
    out = {}
    for name, sub in FOLDERS.items():
        (root / sub).mkdir(mode=0o700, exist_ok=True)
        out[name] = str(root / sub)
    out["VLLM_COMPANION_STATE"] = str(root / FOLDERS["XDG_STATE_HOME"] / paths.APP)
    return out


def point_at(root: Path) -> None:
    """This process's environment (and so its children's) uses the folders under ``root``."""
    os.environ.update(folders_under(root))
    for name in UNSET:
        os.environ.pop(name, None)


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def _stamp(path: Path) -> Stamp | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    return stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns


def snapshot(folders: list[Path]) -> dict[str, Stamp | None]:
    """Each folder and (bounded) everything below it, links not followed."""
    out: dict[str, Stamp | None] = {}
    for folder in folders:
        out[str(folder)] = _stamp(folder)
        for top, dirs, files in os.walk(folder):
            for name in [*dirs, *files]:
                if len(out) < MAX_ENTRIES:
                    out[os.path.join(top, name)] = _stamp(Path(top, name))
    return out


def changed(before: dict[str, Stamp | None], after: dict[str, Stamp | None]) -> list[str]:
    """What was created, removed or modified between two snapshots."""
    out = []
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path), after.get(path)
        if was != now:
            out.append(f"{'created' if was is None else 'removed' if now is None else 'changed'} {path}")
    return out
