"""``redaction.redact_ends``: the two ends of a text too long to redact whole, redacted alone (the
chat's latest question, chat/context.py). Against ``redact`` of the whole text, on texts made of
words, tokens and PEM keys, cut anywhere: the same ends, and no part of a secret in clear."""

from __future__ import annotations

import random
import re
import time

from vllm_companion.redaction import redact, redact_ends

TOKEN = " ghp_" + "A1b2C3d4" * 5 + " "  # a GitHub token, spaced from its neighbours
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "MIIEow" * 50 + "\n-----END RSA PRIVATE KEY-----"


def numberless(text: str) -> str:
    return re.sub(r":\d+>", ">", text)  # placeholders are numbered in the order they are made


def texts(seed: int, count: int) -> list[tuple[str, int, int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts: list[str] = []
        size = rng.randint(0, 3000)
        while sum(map(len, parts)) < size:
            pick = rng.random()
            parts.append(TOKEN if pick < 0.1 else PEM if pick < 0.13 else " word " * rng.randint(1, 20))
        text = "".join(parts)
        out.append((text, rng.randint(0, len(text)), rng.randint(0, len(text))))
    return out


def test_the_ends_are_the_whole_texts_redaction_cut_and_no_secret_is_left_in_part() -> None:
    for text, head, tail in texts(seed=7, count=1500):
        first, left_out, last = redact_ends(text, head, tail)
        whole = numberless(redact(text).text)
        assert left_out >= 0
        if left_out == 0:
            assert numberless(first + last) == whole
        else:
            assert whole.startswith(numberless(first)) and whole.endswith(numberless(last))
        for secret in (TOKEN[5:-1], "MIIEowMIIEow"):
            assert not any(secret[k : k + 8] in first + last for k in range(len(secret) - 7)), (head, tail)


def test_without_secrets_the_ends_are_the_texts_own() -> None:
    text = "plain words " * 10_000
    assert redact_ends(text, 100, 50) == (text[:100], len(text) - 150, text[-50:])
    assert redact_ends(text, 10**9, 5) == (text, 0, "")


def test_only_the_ends_are_read() -> None:
    """10 MB with secrets all through: redacting it whole takes ~1.5 s; its ends, a few ms."""
    text = ("x = 1" + TOKEN) * (10_000_000 // (5 + len(TOKEN)))
    started = time.perf_counter()
    first, left_out, last = redact_ends(text, 2_000, 2_000)
    assert time.perf_counter() - started < 0.2
    assert "<redacted:github-token:" in first and "<redacted:github-token:" in last and "A1b2C3d4" not in first + last
    assert left_out > len(text) - 4_000 - 2 * len(TOKEN)


def test_a_key_that_ended_long_before_the_tail_is_not_read_back_to() -> None:
    """A 3 KB key 1 MB before the tail of 10 MB: the tail's reading went back to its header (0.2 s
    of ``redact`` over the megabyte); words after the key end it, so only the tail is read."""
    words = "plain words, no secret. "
    text = words * (9_000_000 // len(words)) + PEM * 10 + words * (1_000_000 // len(words))
    started = time.perf_counter()
    first, left_out, last = redact_ends(text, 2_000, 2_000)
    assert time.perf_counter() - started < 0.1
    assert (first, last) == (text[:2_000], text[-2_000:]) and left_out == len(text) - 4_000


def test_a_long_encrypted_key_is_read_back_to_its_header_past_its_own_header_lines() -> None:
    """An encrypted PEM's ``Proc-Type: 4,ENCRYPTED`` lines are not base64, but lie within the first
    16,384 characters the key pattern takes whole: its base64 reaching the tail is still a key."""
    head = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B\n\n"
    text = "words. " * 1000 + head + "MIIEowIBAAKCAQEA\n" * 20_000
    first, _, last = redact_ends(text, 100, 1_000)
    assert "MIIEow" not in first + last and "<redacted:private-key:" in last
    assert numberless(redact(text).text).endswith(numberless(last))


def test_a_key_label_is_read_to_the_same_length_by_both_patterns() -> None:
    """A long key's tail is redacted as ``redact`` does the whole text, whatever its label: the
    tail's header search took labels of 64 characters, the key pattern any (a 100-character label
    made a key for one and not the other: its tail went out in clear)."""
    for label in ("A" * 64, "A" * 100):
        text = "words. " * 1000 + f"-----BEGIN {label} PRIVATE KEY-----\n" + "MIIEowIBAAKCAQEA\n" * 20_000
        first, _, last = redact_ends(text, 100, 1_000)
        whole = numberless(redact(text).text)
        assert whole.startswith(numberless(first)) and whole.endswith(numberless(last)), label
