"""Nothing leaves that the user did not mean to send; a repository does not choose what runs
(issue 9, points 6-10). Over real stdio against the fake engine; what the engine received is read
back from its request log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, capture_partials, chat_request, inline, open_doc, options, session, wait_for
from vllm_companion.privacy import Privacy, redact

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq0vP1\nabcDEF+/==\n-----END RSA PRIVATE KEY-----"
AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK = "xoxb-123456789012-123456789012-AbCdEfGhIjKlMnOpQrStUvWx"
INLINE_SECRETS = (PEM, AWS, GITHUB, SLACK)


def sent(backend: FakeBackend) -> str:
    return str([r.body for r in backend.requests])


def ask(question: str, **context: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}], "context": context, "maxTokens": 16}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "app.py").write_text("def area(r):\n    return 3.14 * r * r\n")
    (ws / "id_rsa").write_text(PEM)
    (ws / "notes.txt").symlink_to(ws / "id_rsa")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host prod\n  IdentityFile ~/.ssh/prod_key\n")
    (home / ".git-credentials").write_text("https://user:ghp_secret@github.com\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
    return ws


async def test_attachments_only_from_the_workspace(backend: FakeBackend, workspace: Path, tmp_path: Path) -> None:
    """6. /etc/passwd, a ../ path, /proc, ~/.ssh, ~/.git-credentials, ~/.aws: refused; the
    workspace's own file is read."""
    backend.default = Reply(chunks=["ok"])
    home = tmp_path / "home"
    outside = ["file:///etc/passwd", f"file://{workspace}/../../../../etc/hostname", "file:///proc/self/status",
               (home / ".ssh" / "config").as_uri(), (home / ".git-credentials").as_uri(),
               (home / ".aws" / "config").as_uri(), "file:///dev/zero"]
    async with session(options(backend.url), workspace=workspace.as_uri()) as client:
        capture_partials(client)
        files = [*outside, (workspace / "app.py").as_uri()]
        result = as_dict(await chat_request(client, ask("explain", files=files)))
    body = sent(backend)
    for needle in ("root:", "IdentityFile", "ghp_secret", "eu-west-1", "VmRSS"):
        assert needle not in body
    assert "3.14 * r * r" in body
    assert set(result["excludedContext"]) == set(outside)
    assert "outside the workspace" in str(result["excludedWhy"])


@pytest.mark.parametrize("name", [".ENV", "SERVER.PEM", "id_rsa/.", "notes.txt", ".envrc", ".netrc", ".git-credentials",
                                  ".aws/config", ".ssh/known_hosts", ".kube/config", ".docker/config.json",
                                  "prod.tfstate", "store.jks", "cert.p12", "putty.ppk", "tls.key", ".npmrc", ".pypirc"])
def test_the_secret_filter_is_hard_to_pass(workspace: Path, name: str) -> None:
    """7. Case, trailing "/.", a symlink to a key, and the extended list."""
    privacy = Privacy([], [workspace.as_uri()])
    path = workspace / name
    if not path.exists() and name != "id_rsa/.":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    uri = f"file://{workspace}/{name}"
    assert privacy.is_secret(uri), name
    assert privacy.read(uri) is None
    assert not privacy.is_secret((workspace / "app.py").as_uri())


async def test_completion_context_never_carries_secret_files(backend: FakeBackend) -> None:
    """8. Open .env, credentials.py, secret_keys.py: none of them reaches a completion prompt
    (Qwen2.5-Coder: other open files are repo context); completion inside .env is off."""
    backend.default = Reply(chunks=["x"])
    async with session(options(backend.url)) as client:
        open_doc(client, "API_KEY=hunter2-env\n█", name=".env")
        open_doc(client, "PASSWORD = 'hunter2-credentials'\n█", name="credentials.py")
        open_doc(client, "TOKEN = 'hunter2-secret-keys'\n█", name="secret_keys.py")
        open_doc(client, "def helper():\n    return 'visible-context'\n█", name="helper.py")
        uri, pos = open_doc(client, "def main():\n    █\n", name="main.py")
        assert await inline(client, uri, pos) == "x"
        env_uri, env_pos = open_doc(client, "SECRET=1\n█", name="prod.env")
        before = len(backend.requests)
        assert await inline(client, env_uri, env_pos) is None
        assert len(backend.requests) == before
    body = sent(backend)
    assert "hunter2" not in body and "visible-context" in body


async def test_inline_secrets_are_redacted_from_context_and_chat(backend: FakeBackend, workspace: Path) -> None:
    """9. A PEM block, an AWS key, GitHub and Slack tokens in an open buffer: redacted wherever it
    is context (completion's other files, chat's selection and history)."""
    backend.default = Reply(chunks=["ok"])
    leaky = "CONFIG = '''\n" + "\n".join(INLINE_SECRETS) + "\n'''\n"
    async with session(options(backend.url), workspace=workspace.as_uri()) as client:
        capture_partials(client)
        leaky_uri, _ = open_doc(client, leaky + "█", name="settings.py")
        uri, pos = open_doc(client, "def main():\n    █\n", name="main.py")
        assert await inline(client, uri, pos) == "ok"
        await chat_request(client, {"messages": [{"role": "user", "content": f"my key is {AWS}"}],
                                    "context": {"currentFile": leaky_uri}, "maxTokens": 8})
    body = sent(backend)
    for secret in (AWS, GITHUB, SLACK, "MIIEowIBAAKCAQEA7bq0vP1"):
        assert secret not in body, secret
    assert "<redacted:aws-access-key" in body and "<redacted:private-key" in body


def test_redaction_restores_into_edits_and_leaves_code_alone() -> None:
    """9. An edit puts the secrets back where they were; ordinary code is untouched."""
    code = f"key = '{AWS}'\ntoken = '{GITHUB}'\nx = compute(a, b)\n"
    hidden = redact(code)
    assert AWS not in hidden.text and GITHUB not in hidden.text and "compute(a, b)" in hidden.text
    assert hidden.restore(hidden.text) == code
    assert redact("def f(sk):\n    return sk_live_value + AKIA\n").found == {}


async def test_completion_to_a_remote_endpoint_redacts_the_file_itself() -> None:
    """9. Code for an endpoint off loopback: inline secrets in the file are redacted too (the
    prompt is built directly: no traffic goes off this machine)."""
    from vllm_companion.backend import Backend, Connection
    from vllm_companion.completion.prompt import render_prompt
    from vllm_companion.completion.window import build_window
    from vllm_companion.config import load_config
    from vllm_companion.documents import DocumentStore
    from vllm_companion.prompts import resolve_family
    from vllm_companion.tokens import Budget

    docs = DocumentStore()
    doc = docs.open("file:///w/a.py", "python", 1, f"KEY = '{AWS}'\nx = ")
    for endpoint, leaks in (("http://203.0.113.9:8000/v1", False), ("http://127.0.0.1:8000/v1", True)):
        config, _ = load_config({"backend": {"endpoint": endpoint}})
        backend = Backend(Connection.attach(config.backend))
        window = build_window(doc, 1, 4, Budget(512))
        prompt = render_prompt(doc.uri, "python", resolve_family("qwen2.5-coder"), window, (), backend.on_loopback)
        assert (AWS in prompt) is leaks
        await backend.close()


async def test_a_workspace_cannot_choose_what_runs(tmp_path: Path) -> None:
    """10. The user's initializationOptions start the (fake) engine; a workspace/configuration
    answer with engine.command = sh -c ... would win on merge order, and must not run."""
    from tests.e2e.test_shared_engine import launch_options, ready

    marker = tmp_path / "PWNED"
    hostile = {"engine": {"command": ["sh", "-c", f"touch {marker}; sleep 60"], "python": "/bin/sh"}}
    env = {"VLLM_COMPANION_CACHE": str(tmp_path / "cache")}
    async with session(launch_options(), configuration=hostile, env=env) as client:
        await wait_for(lambda: ready(client), timeout=30)
        uri, pos = open_doc(client, "x = █\n")
        assert await inline(client, uri, pos) == "ready_engine_answer"
        shown = [m.message for m in client.messages]  # type: ignore[attr-defined]
    assert not marker.exists()
    assert any("workspace settings ignored" in m and "engine.command" in m for m in shown), shown
