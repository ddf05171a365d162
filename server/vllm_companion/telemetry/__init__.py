"""Acceptance telemetry, kept on this machine: events (events.py; stored by store.py, in files.py's
folder), the suggestions they are about (tracker.py), how much of them survives (survival.py), and
what the server learns from them (tuning.py)."""

from .files import state_dir
from .store import EventStore
from .tracker import Acceptance, cursor_kind

__all__ = ["Acceptance", "EventStore", "cursor_kind", "state_dir"]
