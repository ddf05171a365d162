"""The plain data that flows through next-edit suggestions (issue 22).

Shared contract between the server core (history, edits, propagation, service) and the model
side (formats, model predictor): plain frozen dataclasses, no pygls/lsprotocol below lsp/.
Positions here are code points; lsp/nextedit.py converts them to UTF-16 at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RecordedEdit:
    """One coalesced user edit (history.py records them from didChange)."""

    uri: str
    path: str  # workspace-relative display path (already privacy-checked)
    start_row: int  # first changed line (0-based) in the document AFTER the edit
    before: str  # the changed lines before the edit, with up to 2 lines of context each side
    after: str  # the same lines after the edit
    accepted: bool = False  # the edit came from an accepted suggestion


@dataclass(frozen=True)
class Region:
    """The editable region around the cursor (current document text)."""

    uri: str
    path: str
    language_id: str
    start_row: int  # 0-based, inclusive
    end_row: int  # 0-based, exclusive
    text: str  # the region's lines joined with "\n" (no trailing newline added)
    cursor_row: int  # document row of the cursor
    cursor_col: int  # code-point column of the cursor
    before: str = ""  # lines above the region (bounded excerpt, for context)
    after: str = ""  # lines below the region (bounded excerpt)


@dataclass(frozen=True)
class NextEditInput:
    region: Region
    history: tuple[RecordedEdit, ...]  # oldest first, already redacted, within the token budget


@dataclass(frozen=True)
class Suggestion:
    """One replacement in the document, code-point positions; lsp/ converts to UTF-16."""

    start_row: int
    start_col: int
    end_row: int
    end_col: int
    text: str
    source: str  # "propagation" or the family name


class Predictor(Protocol):
    """What NextEditService needs from a model (nextedit/model.py's ModelPredictor)."""

    async def predict(self, inp: NextEditInput) -> str | None:
        """The predicted new text of inp.region, or None for no edit / an unusable answer."""
        ...
