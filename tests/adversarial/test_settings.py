"""Settings as an attack surface: a repository's settings must not choose where code and keys go.

``workspace/configuration`` answers and ``didChangeConfiguration`` carry a repository's settings
(VS Code's .vscode/settings.json, Emacs's .dir-locals.el via eglot, Neovim's .nvim.lua, Helix's
.helix/languages.toml). Issue 19, point 1: a workspace ``backend.endpoint`` received the user's
``Bearer`` key, gateway header and code; a workspace ``chat.excludeGlobs: []`` un-excluded a file.
Each case drives the real server over stdio against two fake engines on real sockets: the user's
and the repository's. Also: credentials in an endpoint URL never reach a log (``redact_url``) and
an endpoint that is not an http(s) URL is a bad setting, not "cannot reach" (issue 23).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pydantic.alias_generators import to_camel

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, chat_request, inline, open_doc, session, wait_for
from vllm_companion.config import Config, load_config, redact_url
from vllm_companion.privacy import Privacy
from vllm_companion.settings_trust import (
    PRIVACY_LISTS,
    WORKSPACE_TUNABLE,
    from_workspace,
    user_only_keys,
)

ROOT = Path(__file__).resolve().parents[2]
USER_KEY, GATEWAY = "user-key-0123456789", "gateway-token-abcdef"


@pytest.fixture
async def repo_backend() -> AsyncIterator[FakeBackend]:
    """The endpoint a hostile repository names: it must never be contacted."""
    fake = await FakeBackend(model="repo-model").start()
    yield fake
    await fake.stop()


def user_options(backend: FakeBackend, **extra: Any) -> dict[str, Any]:
    backend.api_key = USER_KEY
    user = {"backend": {"endpoint": backend.url, "apiKey": USER_KEY, "headers": {"X-Gateway-Token": GATEWAY}},
            "completion": {"debounceMs": 0}}
    return {**user, **extra}


def hostile(repo: FakeBackend, **extra: Any) -> dict[str, Any]:
    return {"backend": {"endpoint": repo.url, "apiKey": "repo-key", "headers": {"X-Repo": "1"}}, **extra}


def told_ignored(client: Any) -> list[str]:
    return [m.message for m in client.messages if "workspace settings ignored" in m.message]


def assert_untouched(repo: FakeBackend) -> None:
    assert repo.requests == [], [(r.path, r.headers) for r in repo.requests]


async def test_workspace_configuration_cannot_send_code_or_key_elsewhere(
    backend: FakeBackend, repo_backend: FakeBackend
) -> None:
    """eglot answers workspace/configuration from .dir-locals.el: the repository's endpoint gets
    nothing (no request, no key, no header); its other settings (maxTokens) still apply."""
    backend.default = Reply(chunks=["user_side"])
    workspace = hostile(repo_backend, completion={"debounceMs": 0, "maxTokens": 7})
    async with session(user_options(backend), capabilities="emacs", configuration=workspace) as client:
        await wait_for(lambda: told_ignored(client), timeout=10)
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "user_side"
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))  # pull again
        assert await inline(client, uri, pos) is not None
        notes = told_ignored(client)
    assert_untouched(repo_backend)
    seen = next(r for r in backend.generation_requests() if r.body.get("max_tokens") == 7)
    assert seen.headers.get("authorization") == f"Bearer {USER_KEY}"
    assert seen.headers.get("x-gateway-token") == GATEWAY
    assert len(notes) == 1 and all(k in notes[0] for k in ("backend.endpoint", "backend.apiKey", "backend.headers"))


async def test_did_change_configuration_cannot_redirect_completions(
    backend: FakeBackend, repo_backend: FakeBackend
) -> None:
    """The same from didChangeConfiguration, spelt snake_case (``api_key``) to dodge the check."""
    backend.default = Reply(chunks=["still_mine"])
    async with session(user_options(backend)) as client:
        uri, pos = open_doc(client, "x = █\n")
        settings = {"backend": {"endpoint": repo_backend.url, "api_key": "repo-key", "launch": True},
                    "completion": {"maxTokens": 5}, "engine": {"command": ["sh", "-c", "exit 3"]}}
        change = types.DidChangeConfigurationParams(settings={"vllmCompanion": settings})
        client.workspace_did_change_configuration(change)
        await wait_for(lambda: told_ignored(client), timeout=10)
        assert await inline(client, uri, pos) == "still_mine"
        notes = told_ignored(client)
    assert_untouched(repo_backend)
    assert backend.generation_requests()[-1].body["max_tokens"] == 5
    assert all(k in notes[0] for k in ("backend.endpoint", "backend.apiKey", "backend.launch", "engine.command"))


async def test_workspace_empty_exclude_list_cannot_unexclude_a_file(backend: FakeBackend) -> None:
    """A workspace ``chat.excludeGlobs: []`` (and a chat model of its choosing) against the user's
    ``["*.private"]``: the attached file stays out of the chat, the user's chat model stays."""
    backend.default = Reply(chunks=["ok"])
    user = user_options(backend, chat={"excludeGlobs": ["*.private"], "model": backend.model})
    workspace = {"chat": {"excludeGlobs": [], "model": "repo-paid-model"}}
    async with session(user, capabilities="emacs", configuration=workspace) as client:
        await wait_for(lambda: told_ignored(client), timeout=10)
        secret_uri, _ = open_doc(client, "password = hunter2-private\n", language="plaintext", name="notes.private")
        code_uri, _ = open_doc(client, "def f():\n    return 1\n█", name="code.py")
        ask = {"messages": [{"role": "user", "content": "what is in my files?"}],
               "context": {"currentFile": code_uri, "files": [secret_uri]}}
        result = as_dict(await chat_request(client, ask))
    body = str([r.body for r in backend.requests])
    assert "hunter2" not in body and "return 1" in body
    assert secret_uri in result["excludedContext"]
    assert {r.body.get("model") for r in backend.generation_requests()} == {backend.model}


async def test_workspace_may_add_an_exclusion(backend: FakeBackend) -> None:
    """The union's other half: a repository's own exclusion is honoured on top of the user's."""
    user = user_options(backend, chat={"excludeGlobs": ["*.private"]})
    config, _ = load_config(user)
    merged, ignored, _ = from_workspace({"chat": {"excludeGlobs": ["*.internal", "*.private"]}}, config)
    assert merged["chat"]["excludeGlobs"] == ["*.private", "*.internal"] and ignored == []


async def test_user_initialization_options_still_set_everything(backend: FakeBackend) -> None:
    """What the user passes is obeyed: endpoint, key, headers, model; a workspace answer that
    only echoes the user's own values (VS Code sends them back) is no news: nothing is reported."""
    backend.default = Reply(chunks=["obeyed"])
    user = user_options(backend)
    user["backend"]["model"] = backend.model
    echo = {"backend": {"endpoint": backend.url, "model": backend.model}, "engine": {"kind": "vllm"}}
    async with session(user, configuration=echo) as client:
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "obeyed"
        await asyncio.sleep(0.5)
        notes = told_ignored(client)
    seen = backend.generation_requests()
    assert seen and all(r.headers.get("authorization") == f"Bearer {USER_KEY}" for r in seen)
    assert all(r.headers.get("x-gateway-token") == GATEWAY and r.body["model"] == backend.model for r in seen)
    assert notes == []


def test_other_spelling_or_shape_cannot_dodge_the_user_only_table() -> None:
    user, _ = load_config({"backend": {"endpoint": "http://10.0.0.1:8000/v1", "apiKey": "k"},
                           "chat": {"excludeGlobs": ["*.private"]}})
    attacks: list[dict[str, Any]] = [
        {"backend": {"api_key": "x", "end_point": "http://evil/v1", "endpoint": "http://evil/v1"}},
        {"backend": "http://evil/v1"},  # a non-table would replace the user's whole section
        {"chat": {"exclude_globs": []}},
        {"chat": {"excludeGlobs": "none"}},
        {"engine": {"command": ["sh"], "api_key": "x", "gpu_memory_utilization": 0.5}},
        {"BACKEND": {"ENDPOINT": "http://evil/v1", "API_KEY": "x"}, "Chat": {"ExcludeGlobs": []}},
        {"bac\u212aend": {"endpoint": "http://evil/v1"}, "backend": {"api\u212aey": "x"}},  # KELVIN SIGN lowers to k
        {"backend.endpoint": "http://evil/v1", "backend": {"headers.X-Evil": "1"}},  # VS Code's flat form
        {"vllmCompanion": {"backend": {"endpoint": "http://evil/v1"}}, "backend": {"vllmCompanion": {"apiKey": "x"}}},
        {"backend": [{"endpoint": "http://evil/v1"}], "chat": [], "engine": None},
        {"backend": {"endpoint": "http://10.0.0.1:8000/v1", "apiKey": "k", "model": "paid"}},
    ]
    for attack in attacks:
        merged, _, _ = from_workspace(attack, user)
        config, _ = load_config(user.model_dump(by_alias=True), merged)
        assert config.backend == user.backend and config.engine == user.engine, attack
        assert "*.private" in config.chat.exclude_globs, attack


def test_a_workspace_adds_at_most_a_bounded_number_of_exclusions() -> None:
    user, _ = load_config({})
    merged, _, _ = from_workspace({"chat": {"excludeGlobs": [f"*.{i}" for i in range(100_000)]}}, user)
    assert len(merged["chat"]["excludeGlobs"]) <= 256


def restricted_configurations() -> set[str]:
    manifest = json.loads((ROOT / "extension" / "package.json").read_text())
    return set(manifest["capabilities"]["untrustedWorkspaces"]["restrictedConfigurations"])


def test_vscode_restricted_mode_lists_every_user_only_key() -> None:
    """In an untrusted folder VS Code ignores the folder's value of each restricted setting."""
    expected = {f"vllmCompanion.{k}" for k in user_only_keys()} | {"vllmCompanion.serverCommand",
                                                                    "vllmCompanion.pythonPath"}
    assert restricted_configurations() == expected


def ts_list(source: str, name: str) -> set[str]:
    match = re.search(rf"export const {name}(?:: readonly string\[\])? = \[(.*?)\];", source, re.S)
    assert match, name
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def test_vscode_extension_forwards_the_users_own_value_of_every_user_only_key() -> None:
    """extension/src/settings.ts builds initializationOptions from the user's own value
    (``inspect().globalValue``) of every user-only key, and joins every scope's privacy lists.
    Every one must be forwarded: the server drops them from VS Code's workspace/configuration
    answers, so a user's own ``completion.telemetry: false``, ``backend.headers`` or ``log.file``
    that only came that way was ignored (extension/test/unit/settings.test.ts runs the code)."""
    source = (ROOT / "extension" / "src" / "settings.ts").read_text()
    keys = (ROOT / "extension" / "src" / "generated" / "settingsKeys.ts").read_text()  # generated
    assert ts_list(keys, "USER_ONLY") == set(user_only_keys())
    assert ts_list(keys, "PRIVACY_LISTS") == {f"{s}.{k}" for s, k in PRIVACY_LISTS}
    assert 'from "./generated/settingsKeys"' in source
    assert re.search(r"for \(const path of \[\.\.\.FORWARDED_TUNABLE, \.\.\.USER_ONLY\]\)", source)
    assert "globalValue" in source and "workspaceValue" in source


def test_credentials_in_an_endpoint_url_are_redacted() -> None:
    cases = {
        "http://user:s3cret@gw.example:8443/v1": "http://***@gw.example:8443/v1",
        "https://gw.example/v1?key=s3cret&x=1": "https://gw.example/v1?***",
        "https://s3cret@[::1]:8000/v1#s3cret": "https://***@[::1]:8000/v1",
        "http://h:99999999/v1?key=s3cret": "<not a URL>",
        "s3cret@host:8000": "<not a URL>",
    }
    for url, shown in cases.items():
        assert redact_url(url) == shown


async def test_endpoint_credentials_never_reach_the_log(
    backend: FakeBackend, capfd: pytest.CaptureFixture[str]
) -> None:
    """An endpoint with ``user:password@``; the model it names is not listed, which the server
    logs with the endpoint: the log (debug level, stderr) shows it redacted."""
    backend.default = Reply(chunks=["y"])
    endpoint = backend.url.replace("http://", "http://alice:pw-s3cret-pw@")
    async with session({"backend": {"endpoint": endpoint, "model": "unlisted-model"},
                        "completion": {"debounceMs": 0}}) as client:
        uri, pos = open_doc(client, "x = █\n")
        await inline(client, uri, pos)
        err = ""

        def logged() -> bool:
            nonlocal err
            err += capfd.readouterr().err
            return "not listed by" in err

        await wait_for(logged, timeout=10)
        messages = [m.message for m in client.messages]
        statuses = json.dumps(client.statuses, default=str)  # type: ignore[attr-defined]
    err += capfd.readouterr().err
    assert "not listed by http://***@127.0.0.1" in err, err[-2000:]
    assert "pw-s3cret-pw" not in err + str(messages) + statuses


@pytest.mark.parametrize("endpoint", ["ftp://127.0.0.1:21/v1", "localhost:8000/v1", "http:///v1", "http://h:x/v1"])
def test_endpoint_that_is_not_http_is_a_bad_setting(endpoint: str) -> None:
    config, problems = load_config({"backend": {"endpoint": endpoint}})
    assert config.backend.endpoint == "http://127.0.0.1:8000/v1"
    assert any("backend.endpoint" in p and "not an http(s) URL" in p for p in problems), problems


async def test_endpoint_that_is_not_http_is_named_not_unreachable() -> None:
    async with session({"backend": {"endpoint": "127.0.0.1:8000/v1"}}) as client:
        await wait_for(lambda: any("backend.endpoint" in m.message for m in client.messages), timeout=10)
        shown = [m.message for m in client.messages]
    assert any("not an http(s) URL" in m for m in shown), shown


# -- bounds: a repository's settings cost bounded time and bounded messages --------------------


async def test_huge_workspace_settings_neither_stall_the_server_nor_flood_the_user(backend: FakeBackend) -> None:
    """100,000 bad ``contextSources`` items from a repository: each was a problem, the list was
    repaired one item at a time on the event loop (quadratic) and the user got an 11 MB message."""
    backend.default = Reply(chunks=["fine"])
    async with session(user_options(backend)) as client:
        uri, pos = open_doc(client, "x = █\n")
        junk = {"completion": {"contextSources": ["bogus"] * 100_000, "maxTokens": 9}}
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"vllmCompanion": junk}))
        await wait_for(lambda: any("contextSources" in m.message for m in client.messages), timeout=20)
        assert await inline(client, uri, pos) == "fine"
        shown = [m.message for m in client.messages]
    assert sum(map(len, shown)) < 4000, [len(m) for m in shown]
    assert backend.generation_requests()[-1].body["max_tokens"] == 9  # the rest of the section still applies


def test_a_million_workspace_keys_are_refused_in_bounded_time() -> None:
    """Unknown keys and sections by the million (a 12 MB settings file) took 9 s on the event loop."""
    user, _ = load_config({"chat": {"excludeGlobs": ["*.private"]}})
    for junk in ({"completion": {f"k{i}": i for i in range(1_000_000)}, "chat": {"maxTokens": 99}},
                 {**{f"s{i}": {} for i in range(1_000_000)}, "chat": {"maxTokens": 99}}):
        started = time.perf_counter()
        merged, _, problems = from_workspace(junk, user)
        config, _ = load_config(user.model_dump(by_alias=True), merged)
        assert time.perf_counter() - started < 1.0
        assert config.chat.exclude_globs == ["*.private"] and problems


def test_workspace_globs_cannot_stall_the_privacy_filter() -> None:
    """256 added globs of 4,000 characters each cost 22 s of regex compilation in the first
    secret-file check (fnmatch), on the event loop. A workspace glob is at most 256 characters
    with at most 16 ``*``; longer ones are refused and named, the user's own are kept whatever."""
    salt = uuid.uuid4().hex  # fnmatch caches compiled patterns per process
    user_glob = "*a" * 300 + salt  # the user's own, however odd, is theirs
    user, _ = load_config({"chat": {"excludeGlobs": [user_glob]}})
    attack = {"chat": {"excludeGlobs": ["*.internal"] + [f"{'*a' * 2000}{salt}{i}" for i in range(256)]}}
    merged, _, problems = from_workspace(attack, user)
    globs = merged["chat"]["excludeGlobs"]
    assert globs == [user_glob, "*.internal"] and any("chat.excludeGlobs" in p for p in problems), problems
    started = time.perf_counter()
    assert Privacy(globs).is_secret("file:///work/src/" + "a" * 200 + ".py") is False
    assert time.perf_counter() - started < 3.0


def test_bad_items_in_an_exclusion_list_cost_no_other_exclusion() -> None:
    """Two bad items in a row: the repair deleted by index while the list shrank, so the second
    deletion removed the *next good* exclusion (``*.b``) and the file it covers was sent."""
    config, problems = load_config({"chat": {"excludeGlobs": ["*.a", 5, 6, "*.b", 7]}})
    assert config.chat.exclude_globs == ["*.a", "*.b"], problems
    assert len(problems) == 3


def test_a_new_setting_is_the_users_until_declared_workspace_safe() -> None:
    """The table is written the safe way round: what a repository may tune is listed
    (``WORKSPACE_TUNABLE``); every other field, including one added later, is user-only."""
    every = {f"{s}.{to_camel(f)}" for s, m in Config.model_fields.items()
             for f in m.annotation.model_fields}  # type: ignore[union-attr]
    tunable = {f"{s}.{k}" for s, keys in WORKSPACE_TUNABLE.items() for k in keys}
    assert set(user_only_keys()) == every - tunable
    assert not tunable & {"backend.endpoint", "backend.apiKey", "backend.headers", "backend.model",
                          "chat.model", "completion.telemetry", "log.file"}
    assert not any(k.startswith("engine.") for k in tunable)


def test_a_workspace_cannot_make_requests_cost_the_user_more() -> None:
    """Tunable is not unbounded: a repository may shrink requests and slow them down, never make
    them larger or more frequent on the user's (possibly paid) endpoint than the user's own
    settings, and may not switch prefetching on."""
    config, _ = load_config({"completion": {"prefetch": False}})
    asked = {"backend": {"contextLength": 1_000_000},
             "completion": {"maxPromptTokens": 1_000_000, "maxTokens": 4096, "contextTokens": 8192,
                            "debounceMs": 0, "prefetch": True},
             "chat": {"maxTokens": 1_000_000}}
    merged, _, _ = from_workspace(asked, config)
    mine = config.model_dump(by_alias=True)
    assert merged["backend"]["contextLength"] == mine["backend"]["contextLength"]
    for key in ("maxPromptTokens", "maxTokens", "contextTokens"):
        assert merged["completion"][key] == mine["completion"][key]
    assert merged["completion"]["debounceMs"] == mine["completion"]["debounceMs"]
    assert merged["completion"]["prefetch"] is False
    assert merged["chat"]["maxTokens"] == mine["chat"]["maxTokens"]
    lower, _, _ = from_workspace({"completion": {"maxTokens": 32, "debounceMs": 400}}, config)
    assert lower["completion"] == {"maxTokens": 32, "debounceMs": 400}


def test_declared_null_defaults_in_a_workspace_answer_are_no_news() -> None:
    """VS Code answers workspace/configuration with every declared setting, nulls included: a null
    for a user-only key the user set through the environment is not a workspace trying to change
    it, so the user is not told it was ignored (nor is the value dropped on the user's side)."""
    config, _ = load_config({"engine": {"command": ["/opt/engine", "serve"]}})
    merged, ignored, _ = from_workspace({"engine": {"command": None}, "backend": {"endpoint": None}}, config)
    assert ignored == [] and merged.get("engine", {}) == {}
