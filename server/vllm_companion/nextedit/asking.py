"""When the model is asked for a next edit (``nextEdit.model``: auto, on, off; issue 22).

Edit propagation answers on any machine at once; the model costs a request on the engine. Whether
that request can pay for itself depends on what serves it:

- a trained next-edit family (Sweep, Zeta, Zeta 2, Instinct: ``nextEdit.family`` or detected from
  the served model's name, formats.detect_family) was trained on this very task: asked;
- an endpoint the user attached (``backend.launch`` off): the user chose it, we cannot tell its
  hardware: asked;
- a launched GPU engine (a CUDA plan): the instruct model the plan serves (Qwen2.5-Coder 1.5B to
  32B) answers the generic prompt in well under the cap: asked;
- a launched CPU engine with the generic prompt: NOT asked. Measured (docs/performance.md,
  "Next-edit suggestions"): SmolLM2-135M with the generic prompt took ~4.6 s p50 a request and
  made 0 useful edits in 20 cases; each request also holds the two cores completion needs.

``on`` asks whatever serves; ``off`` never asks (propagation only). A repository's settings may
only switch it off (settings_trust.OFF_ONLY). ``decide`` is pure: tests/unit/test_next_edit_asking.py
holds the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

TRAINED = ("sweep", "zeta", "zeta2", "instinct")  # formats.py's families that were trained for next edits
CPU_GENERIC = ("generic prompt on the launched CPU engine: ~4.6 s a request and 0 useful edits in 20 cases "
               "(docs/performance.md); set nextEdit.model to on to ask it anyway")


class Engine(Protocol):
    """What the decision reads of the engine binding (engine/binding.py): launch mode, and where
    the launched engine runs ("cuda" | "cpu"; None before it is known)."""

    launch: bool

    @property
    def device(self) -> str | None: ...


@dataclass(frozen=True)
class Decision:
    ask: bool
    why: str


def decide(setting: str, family: str, launched: bool, device: str | None) -> Decision:
    """Ask the model for this request? ``setting`` is nextEdit.model, ``family`` the format's name
    (formats.py), ``launched``/``device`` what the binding says of the engine."""
    if setting == "off":
        return Decision(False, "nextEdit.model is off")
    if setting == "on":
        return Decision(True, "nextEdit.model is on")
    if family in TRAINED:
        return Decision(True, f"a {family} next-edit model is served")
    if not launched:
        return Decision(True, "an endpoint you attached")
    if device == "cuda":
        return Decision(True, "the launched GPU engine")
    if device is None:
        return Decision(False, "the launched engine's device is not known yet")
    return Decision(False, CPU_GENERIC)
