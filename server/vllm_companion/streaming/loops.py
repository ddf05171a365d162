"""The loop guard: every repetition detector, in one list, for completions and chat alike."""

from __future__ import annotations

from .blank_run import BlankRun
from .loop_context import LoopContext
from .pipeline import Stage
from .repeat_block import RepeatedBlock
from .repeat_inline import InlineRepeat
from .repeat_line import RepeatedLine
from .repeat_numbered import NumberedLines


def loop_detectors(prefix: str = "", line_occurrences: int = 3) -> list[Stage]:
    """Fresh detectors for one stream; ``prefix`` (text before the cursor) sets what is familiar.

    The one place a ``LoopContext`` is built: every detector of the stream shares it (issue 21,
    point 5: constructors take what they need, no silent defaults).
    """
    ctx = LoopContext.from_prefix(prefix)
    return [
        RepeatedLine(ctx, line_occurrences),
        RepeatedBlock(ctx),
        InlineRepeat(ctx),
        NumberedLines(ctx),
        BlankRun(),
    ]


def is_loop(reason: str | None) -> bool:
    return bool(reason and reason.startswith("loop:"))
