"""Which stream stages and final clean-up an inline completion gets (assembly only; the stages
live in ``streaming/``, one file each)."""

from __future__ import annotations

from collections.abc import Callable, Collection

from ..prompts import Family
from ..streaming import Pipeline, Stage
from ..streaming.finish import drop_suffix_overlap, tidy
from ..streaming.indent_scope import IndentScope
from ..streaming.loops import loop_detectors
from ..streaming.max_lines import MaxLines
from ..streaming.single_line import SingleLine
from ..streaming.stop_sequences import StopSequences
from ..streaming.suffix_retype import SuffixRetype
from .window import Window


def stages_for(
    family: Family, window: Window, max_lines: int, off: Collection[str] = (), single_line: bool = False
) -> Pipeline:
    """The stream stages, less the ones ``off`` names (``completion.ablate``: quality ablations);
    ``single_line``: one line even at the end of a line (learned, telemetry/tuning.py)."""
    after_line = window.suffix[len(window.line_suffix) :].lstrip("\r\n")
    named: list[tuple[str, list[Stage]]] = [
        ("stop", [StopSequences(family.stop)]),
        ("single-line", [SingleLine(window.line_suffix, single_line)]),
        ("suffix-retype", [SuffixRetype(after_line, window.line_prefix)]),
        ("scope", [IndentScope(window.line_prefix)]),
        ("max-lines", [MaxLines(max_lines)]),
        ("loops", list(loop_detectors(window.prefix))),
    ]
    return Pipeline([stage for name, stages in named if name not in off for stage in stages])


def finisher(window: Window) -> Callable[[str], str]:
    def finish(text: str) -> str:
        text = drop_suffix_overlap(text, window.line_prefix, window.line_suffix)
        return tidy(text, window.line_suffix)

    return finish
