"""Inline secrets, redacted (privacy.py's rule 3; docs/security.md): high-precision patterns
(PEM private keys, AWS keys, GitHub, Slack, Google, Stripe, OpenAI/Anthropic tokens), each match
replaced by a numbered ``<redacted:KIND:N>`` placeholder that ``Redaction.restore`` puts back into
an edit. Patterns after gitleaks' rules, every repetition bounded ({n,m}): a hostile file cannot
make one match run away."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECRETS = [
    # A key longer than 16,384 characters (RSA 16384-bit and up, a bundle) goes on over its base64
    # lines to its END line, up to MAX_KEY: its tail was left in clear (tests/adversarial/test_chat.py).
    # Labels of at most 64 characters, as _KEY_HEAD's: a header the tail's reading looks for is a key here.
    ("private-key", r"-----BEGIN[A-Z0-9 ]{0,64}PRIVATE KEY( BLOCK)?-----(?:[\s\S]{0,16384}?"
     r"-----END[A-Z0-9 ]{0,64}PRIVATE KEY( BLOCK)?-----|[\s\S]{0,16384}[A-Za-z0-9+/=\s]{0,1048576}"
     r"(?:-----END[A-Z0-9 ]{0,64}PRIVATE KEY( BLOCK)?-----)?)"),
    ("aws-access-key", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    ("aws-secret-key", r"(?i:aws_secret_access_key)\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,255}"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,255}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("stripe-key", r"\b[sr]k_live_[0-9a-zA-Z]{24,255}\b"),
    ("api-token", r"\bsk-(?:proj|ant|svcacct)-[A-Za-z0-9_-]{20,255}"),
]
_PATTERN = re.compile("|".join(f"(?P<s{i}>{rx})" for i, (_, rx) in enumerate(_SECRETS)))


@dataclass
class Redaction:
    text: str
    found: dict[str, str] = field(default_factory=dict)  # placeholder -> secret

    def restore(self, text: str) -> str:
        for placeholder, secret in self.found.items():
            text = text.replace(placeholder, secret)
        return text


def redact(text: str) -> Redaction:
    """``text`` with every high-precision secret replaced by ``<redacted:KIND:N>``."""
    found: dict[str, str] = {}
    if not _PATTERN.search(text):
        return Redaction(text)
    return Redaction(_PATTERN.sub(lambda match: _placeholder(match, found), text), found)


REACH = 17 * 1024  # characters: more than any match but a key's spans (a PEM key: 16,384 and its two lines)
MAX_KEY = (1 << 20) + REACH  # the longest private-key match (its pattern's bounds)
_KEY_HEAD = re.compile(r"-----BEGIN[A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----")  # the key pattern's header line
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=\s]")  # what ends a key's base64 run (the key pattern's)


def redact_ends(text: str, head: int, tail: int) -> tuple[str, int, str]:
    """The first ``head`` and the last ``tail`` characters of ``text``, redacted, and how many
    characters lie between them, for a text too long to redact whole (a 10 MB chat message held the
    event loop 1.5 s: chat/context.py). Nothing is read more than ``REACH`` past either cut, and a
    cut that falls inside a secret moves out to take it whole, as a placeholder: no part of one is
    left in clear. A private key may be longer than ``REACH`` (up to ``MAX_KEY``): one the head's
    cut falls in is matched whole, and the tail's reading starts at a key header within ``MAX_KEY``
    before it when that key can reach it (``_tail_reading``), else a long key's end, with no header
    in reach, went out in clear."""
    found: dict[str, str] = {}
    out: list[str] = []
    cut, at, end = min(head, len(text)), 0, min(len(text), head + REACH)
    for match in _PATTERN.finditer(text, 0, end):
        if match.start() >= cut:
            break
        if match.end() == end:  # cut short by the reach: a long key's, taken whole
            match = _PATTERN.match(text, match.start()) or match
        out += [text[at : match.start()], _placeholder(match, found)]
        at = match.end()
        cut = max(cut, at)
    first = "".join([*out, text[at:cut]])
    start = max(len(text) - tail, cut)
    matches = [m for m in _PATTERN.finditer(text, _tail_reading(text, cut, start)) if m.end() > start]
    start = min([start, *(m.start() for m in matches[:1])])
    out, at = [], start
    for match in matches:
        out += [text[at : match.start()], _placeholder(match, found)]
        at = match.end()
    return first, start - cut, "".join([*out, text[at:]])


def _tail_reading(text: str, cut: int, start: int) -> int:
    """Where to read from for a tail at ``start``: ``REACH`` before it, or further back to the last
    private key's header within ``MAX_KEY``, never before ``cut``. Only when its key can reach into
    the tail: past its first 16,384 characters a key runs on base64 alone, so one character that is
    not base64 from there to ``start - REACH`` ends it before (a 3 KB key 1 MB back had ``redact``
    read the whole megabyte: 0.2 s instead of 15 ms, tests/unit/test_redact_ends.py). The last
    header is enough: an earlier key reaching the tail runs over it, and so does its own key."""
    reading = start - REACH
    keys = [m for m in _KEY_HEAD.finditer(text, max(cut, start - MAX_KEY), start)]
    if keys and keys[-1].start() < reading and not _NOT_BASE64.search(text, keys[-1].end() + 16384, reading):
        reading = keys[-1].start()
    return max(cut, reading)


def _placeholder(match: re.Match[str], found: dict[str, str]) -> str:
    """``match``'s numbered placeholder, the secret kept in ``found`` under it."""
    kind = _SECRETS[int(next(k for k, v in match.groupdict().items() if v is not None)[1:])][0]
    placeholder = f"<redacted:{kind}:{len(found) + 1}>"
    found[placeholder] = match.group(0)
    return placeholder
