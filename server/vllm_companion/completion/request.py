"""One inline-completion request, its time budget and the prefilter: what is decided before any
model or prompt is looked at (service.py runs the rest of the pipeline).

The cap (``completion.timeoutMs``) runs from the request's arrival (its first byte read by
lsp/transport.py) and the answer leaves ``send_margin`` before it, so the editor has it by the
cap (measured: a hung engine's answer reached the client at 5,004 ms of a 5 s cap when the cap
ran to the answer's start; tests/adversarial/test_protocol.py). The prefilter (``eligible``)
answers without the engine where a completion may not go: a paused server's automatic trigger,
a disabled language, a secret file (whose text never leaves), the middle of a word.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..config import CompletionSettings
from ..documents import Document, DocumentStore
from ..privacy import Privacy

PARTIAL_GRACE_S = 0.005  # the generation wait ends this early, so its partial text beats the hard stop


def send_margin(cap_s: float) -> float:
    """How long before the cap the answer leaves: 50 ms (a tenth of the cap for caps under
    0.5 s). It covers what happens outside the timer: the reader thread's wake-up and GIL
    hand-offs before the arrival is stamped (5 ms each, ``sys.getswitchinterval``), ending the
    generation and writing the answer after it (the 4 ms seen past the cap), and the client's
    read; on a loaded machine, scheduler delays of tens of ms. 1% of the default 5 s cap."""
    return min(0.05, cap_s / 10)


@dataclass(frozen=True)
class CompletionRequest:
    uri: str
    row: int
    col: int  # code points
    automatic: bool = True
    insert: str = ""  # text of the editor's selected suggestion, treated as typed
    replace_from: int | None = None  # where that suggestion starts on the line (it replaces to col)
    arrived: float = field(default_factory=time.monotonic)  # lsp: transport.arrived()


def eligible(req: CompletionRequest, documents: DocumentStore, settings: CompletionSettings,
             privacy: Privacy) -> Document | None:
    """The document, if a completion may be offered in it at all (prefilter)."""
    doc = documents.get(req.uri)
    paused = not settings.enabled and req.automatic  # a paused server still answers Alt+\
    if doc is None or paused or doc.language_id in settings.disabled_languages:
        return None
    if privacy.is_secret(req.uri):
        return None  # a secret file, whose text never leaves
    return doc


def skip_here(line: str, col: int) -> bool:
    """No completion in the middle of a word (Copilot's rule too)."""
    return col < len(line) and (line[col].isalnum() or line[col] == "_") and col > 0 and line[col - 1].isalnum()
