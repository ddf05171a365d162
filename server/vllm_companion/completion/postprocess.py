"""Which stream stages and final clean-up an inline completion gets (assembly only; the stages
live in ``streaming/``, one file each)."""

from __future__ import annotations

from collections.abc import Callable

from ..prompts import Family
from ..streaming import Pipeline, Stage
from ..streaming.finish import drop_suffix_overlap, tidy
from ..streaming.indent_scope import IndentScope
from ..streaming.loops import loop_detectors
from ..streaming.max_lines import MaxLines
from ..streaming.single_line import SingleLine
from ..streaming.stop_sequences import StopSequences
from ..streaming.suffix_retype import SuffixRetype
from .context import Window


def stages_for(family: Family, window: Window, max_lines: int) -> Pipeline:
    after_line = window.suffix[len(window.line_suffix) :].lstrip("\r\n")
    stages: list[Stage] = [
        StopSequences(family.stop),
        SingleLine(window.line_suffix),
        SuffixRetype(after_line, window.line_prefix),
        IndentScope(window.line_prefix),
        MaxLines(max_lines),
        *loop_detectors(window.prefix),
    ]
    return Pipeline(stages)


def finisher(window: Window) -> Callable[[str], str]:
    def finish(text: str) -> str:
        text = drop_suffix_overlap(text, window.line_prefix, window.line_suffix)
        return tidy(text, window.line_suffix)

    return finish
