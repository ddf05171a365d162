"""Settings: defaults, layering, camelCase keys, env vars, bad values reported and replaced."""

from __future__ import annotations

from vllm_companion.config import Config, env_overrides, load_config


def test_defaults_are_complete() -> None:
    config, problems = load_config()
    assert problems == []
    assert config == Config()
    assert config.completion.debounce_ms == 150


def test_layers_later_wins_and_camel_case() -> None:
    env = env_overrides({"VLLM_COMPANION_ENDPOINT": "http://e/v1", "VLLM_COMPANION_MODEL": "m1"})
    config, problems = load_config(env, {"backend": {"model": "m2"}, "completion": {"debounceMs": 40}})
    assert problems == []
    assert config.backend.endpoint == "http://e/v1"
    assert config.backend.model == "m2"
    assert config.completion.debounce_ms == 40


def test_bad_values_fall_back_to_defaults_with_one_message_each() -> None:
    config, problems = load_config(
        {"completion": {"debounceMs": "soon", "maxTokens": -5, "temperature": 0.3}, "backend": "nope"}
    )
    assert config.completion.debounce_ms == 150
    assert config.completion.max_tokens == 128
    assert config.completion.temperature == 0.3  # good fields survive
    assert config.backend.endpoint.startswith("http://127.0.0.1")
    assert len(problems) == 3
    assert any("debounceMs" in p or "debounce_ms" in p for p in problems)


def test_unknown_keys_are_ignored() -> None:
    config, problems = load_config({"completion": {"noSuchKey": 1}, "whatever": True})
    assert problems == [] and config == Config()
