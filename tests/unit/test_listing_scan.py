"""The model list's pre-scan (``backend/listing.py``: ``_values``): what ``json.loads`` would build
between two calls back into Python is counted before the parse, never under-counted, and a rich
gateway catalogue stays well inside the bound."""

from __future__ import annotations

import json

import pytest

from vllm_companion.backend.errors import BackendError
from vllm_companion.backend.listing import MAX_SERVED, MAX_VALUES, SCAN_BYTES, _parse, _values


def _rich_card(i: int) -> dict[str, object]:
    """A card shaped like OpenRouter's (~50 keys and list items, commas in its description)."""
    return {
        "id": f"vendor/model-{i}", "canonical_slug": f"vendor/model-{i}-2025", "hugging_face_id": "", "name": f"M {i}",
        "created": 1700000000 + i, "description": "Fast, cheap, and good: " + ", ".join(["words"] * 10),
        "context_length": 131072,
        "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image"],
                         "output_modalities": ["text"], "tokenizer": "Other", "instruct_type": None},
        "pricing": {"prompt": "0.0000002", "completion": "0.0000006", "request": "0", "image": "0",
                    "web_search": "0", "internal_reasoning": "0"},
        "top_provider": {"context_length": 131072, "max_completion_tokens": 8192, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "frequency_penalty", "seed",
                                 "presence_penalty", "tools", "tool_choice", "response_format", "top_k"],
    }


def test_a_gateway_catalogue_of_a_thousand_rich_cards_is_read_whole() -> None:
    body = json.dumps({"object": "list", "data": [_rich_card(i) for i in range(MAX_SERVED)]}).encode()
    assert _values(body) < MAX_VALUES
    listing = _parse(body)
    assert len(listing.models) == MAX_SERVED and not listing.truncated


def test_cards_without_members_count_nothing_however_many() -> None:
    for separators in ((",", ":"), (", ", ": ")):
        body = json.dumps({"data": [{"id": "a"}] * 100_000}, separators=separators).encode()
        assert _values(body) < 10


@pytest.mark.parametrize("body", [
    b"[" + b",".join([b'",{"'] * 100_000) + b"]",  # a comma then "{" inside each string
    b"[" + b",".join([b'", {"'] * 100_000) + b"]",
    b"{" + b",".join(b'"%d,{":0' % i for i in range(100_000)) + b"}",
    b"[" + b",".join([b"0"] * 100_000) + b"]",
    b"[" + b",".join([b"[]"] * 100_000) + b"]",
])
def test_values_hidden_behind_an_opening_brace_in_a_string_are_still_counted(body: bytes) -> None:
    assert _values(body) >= 100_000 - 1


def test_a_brace_split_between_two_scan_steps_counts_as_a_value_not_as_none() -> None:
    body = b" " * (SCAN_BYTES - 1) + b",{}"
    assert _values(body) == 1


def test_each_nested_list_counts_its_first_item_though_no_comma_precedes_it() -> None:
    """Lists nested 100 deep: one comma per 100 lists; counted by commas alone, 20,866 of them
    (4 MiB, 2 M lists built in one C step of ~1.2 s) passed the bound."""
    nested = b"[" * 100 + b"]" * 100
    assert _values(b"[" + b",".join([nested] * 1000) + b"]") >= 100 * 1000


@pytest.mark.parametrize("body", [
    b'{"data":[{"id":"m",' + b",".join(b'"%x":0' % i for i in range(MAX_VALUES + 1)) + b"}]}",
    b'{"data":[' + b",".join([b"[]"] * (MAX_VALUES + 2)) + b"]}",
    b'{"data":[' + b",".join([b"[" * 100 + b"]" * 100] * (MAX_VALUES // 100 + 1)) + b"]}",
])
def test_a_list_over_the_bound_is_refused_before_its_parse(body: bytes) -> None:
    with pytest.raises(BackendError, match="not a model list"):
        _parse(body)
