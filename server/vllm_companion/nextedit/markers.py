"""Marker text: what must never reach an edit, and what a prompt's context must not be able to forge.

A next-edit prompt is framed by special tokens written as text (``<|file_sep|>``,
``<|editable_region_end|>``, Seed-Coder's ``<[fim-middle]>``, chat templates' ``<|im_end|>``) and
by plain-text markers (Zeta 2's ``<<<<<<< CURRENT`` / ``=======`` / ``>>>>>>> UPDATED``, the
``NO_EDIT`` answer). Engines tokenize special-token text found in a prompt as the token itself, so
a user's document, a history entry or a file name holding one would re-frame the prompt (a
cloned repository can steer the model), and a region holding the family's end marker ends the
model's copy of it early: the rest of the region came back deleted
(tests/adversarial/test_next_edit_model.py). Hence:

- ``leaks(text)``: whether ``text`` holds marker text in any spelling a model or a hostile
  endpoint may write: any case, spaced (``<| file_sep |>``), compatibility forms (the fullwidth
  ``<｜end▁of▁sentence｜>`` of DeepSeek-style vocabularies, NFKC-folded), any closed
  ``<|name|>``/``<[name]>`` shape whatever its letters (look-alikes), a marker cut at the end of
  the text, a merge-conflict line, a ``NO_EDIT(S)`` line. An answer that leaks is no edit
  (parse.py); a region that leaks is never sent (model.py): no prompt can frame it.
- ``defuse(text)``: context text (lines around the region, history, the path) with every marker
  broken by a space (``<|file_sep|>`` -> ``< |file_sep| >``) and control characters replaced, so
  it stays readable to the model and never becomes a token or a header line.
"""

from __future__ import annotations

import re
import unicodedata

_NAMES = (r"endoftext|file_sep|fim[_-]\w+|repo_name|im_start|im_end|im_sep|cursor|user_cursor\w*|"
          r"editable_region_\w+|start_of_file|context_file|snippet|marker_\w*|\w*▁of▁\w*|eot_id|\w+_header_id")
_LEAK = re.compile(
    r"<\|[^\s|<>]{1,64}\|>"  # a closed special-token shape, whatever its letters
    r"|<\[[^\s\[\]<>]{1,64}\]>"  # Seed-Coder's
    rf"|<\s{{0,8}}[|\[]\s{{0,8}}(?:{_NAMES})(?!\w)"  # a known marker, spaced, or not closed
    r"|<\s{0,8}[|\[][\w▁-]{0,64}\s*\Z"  # one cut at the end of the text
    r"|<filename>"
    r"|^(?:<{7}|>{7})(?:[ \t].*)?$|^={7}[ \t]*$"  # merge-conflict lines (Zeta 2's frame)
    r"|^\W{0,4}no_edits?\W{0,4}$",  # the no-edit answers, as a line of their own
    re.I | re.M,
)
# what a tokenizer would read as a special token (exact spellings: ASCII, or DeepSeek's fullwidth bars)
_TOKEN = re.compile(r"<([|｜][^\s|｜<>]{1,64}[|｜]|\[[^\s\[\]<>]{1,64}\]|filename)>")
_CONFLICT = re.compile(r"^(?=<{7}|>{7}|={7})", re.M)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def leaks(text: str) -> bool:
    """Whether ``text`` holds marker text (module doc); linear in its length."""
    return _LEAK.search(unicodedata.normalize("NFKC", text)) is not None


def defuse(text: str) -> str:
    """Context text that cannot frame a prompt: every token-shaped marker broken by spaces,
    merge-conflict lines indented by one, control and invisible characters as ``?``; text
    without any is returned as it is (the golden prompts)."""
    text = _CONTROL.sub("?", text)
    return _CONFLICT.sub(" ", _TOKEN.sub(r"< \1 >", text))


def label(text: str, limit: int = 256) -> str:
    """A one-line name for a prompt header (a path, a language id): defused, at most ``limit``."""
    return defuse(text).replace("\n", "?")[:limit]
