"""Final clean-up of a completed answer (pure functions over the whole text).

``drop_suffix_overlap``: a model that closes what the rest of the line already closes, e.g.
``foo(a)`` typed before an existing ``)``, would leave ``foo(a))``; the overlap is dropped only when
that makes the line's brackets balance better, so ``bar()`` before ``)`` inside ``print(`` keeps
its own parentheses right.
"""

from __future__ import annotations

_PAIRS = {")": "(", "]": "[", "}": "{"}


def imbalance(text: str) -> int:
    depth, bad = 0, 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth:
                depth -= 1
            else:
                bad += 1
    return depth + bad


def drop_suffix_overlap(completion: str, line_prefix: str, line_suffix: str) -> str:
    rest = line_suffix.rstrip()
    if not rest or "\n" in completion:
        return completion
    if rest.startswith(completion.rstrip()) and completion.strip():
        return ""  # the answer only re-types what is already there
    for k in range(min(len(completion), len(rest)), 0, -1):
        if completion.endswith(rest[:k]):
            kept = completion[:-k]
            before = imbalance(line_prefix + completion + rest)
            after = imbalance(line_prefix + kept + rest)
            if after < before:
                return kept
    return completion


def tidy(completion: str, line_suffix: str) -> str:
    """Trailing blanks go; a multi-line answer loses trailing blank lines; blank answers vanish."""
    if not completion.strip():
        return ""
    if "\n" in completion:
        return completion.rstrip()
    return completion.rstrip() if not line_suffix.strip() else completion
