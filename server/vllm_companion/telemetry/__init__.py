"""Acceptance telemetry, kept on this machine: events (store.py), the suggestions they are about
(tracker.py), and what the server learns from them (tuning.py)."""

from .store import EventStore, state_dir
from .tracker import Acceptance, cursor_kind

__all__ = ["Acceptance", "EventStore", "cursor_kind", "state_dir"]
