"""When the cursor is mid-line (code after it on the same line), offer one line only.

Copilot and Continue do the same: a multi-line answer in the middle of a line would push the
rest of the line down, which is almost never what the user meant. ``always``: the user's accepts
say multi-line suggestions are not wanted in this language (telemetry/tuning.py).
"""

from __future__ import annotations

from .pipeline import Cut


class SingleLine:
    def __init__(self, line_suffix: str, always: bool = False) -> None:
        self.active = always or bool(line_suffix.strip())

    def feed(self, text: str, start: int) -> Cut | None:
        if not self.active:
            return None
        nl = text.find("\n", start)
        return Cut(nl, "single-line") if nl != -1 else None
