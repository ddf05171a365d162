"""Drive the real ``vllm-companion lsp`` over stdio like an editor does (pytest-lsp's client).

``session(...)`` starts the server process, initializes it with the given options and client
capabilities, records ``vllmCompanion/status`` notifications, and shuts it down at the end.
``open_doc(client, "text with █ cursor")`` opens a document and returns its URI and cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

CURSOR = "█"
_docs = itertools.count(1)


def server_command() -> list[str]:
    level = os.environ.get("VLLM_COMPANION_TEST_LOG", "debug")
    return [sys.executable, "-m", "vllm_companion", "--log-level", level, "lsp"]


def options(endpoint: str, **completion: Any) -> dict[str, Any]:
    return {"backend": {"endpoint": endpoint}, "completion": {"debounceMs": 0, **completion}}


@contextlib.asynccontextmanager
async def session(
    init_options: dict[str, Any] | None,
    capabilities: str | types.ClientCapabilities = "visual-studio-code",
    env: dict[str, str] | None = None,
    configuration: dict[str, Any] | None = None,
    process_id: int | None = None,
    workspace: str | list[str] | None = None,
) -> AsyncIterator[LanguageClient]:
    config = ClientServerConfig(server_command=server_command(), server_env={**os.environ, **(env or {})})
    client: LanguageClient = await config.start()  # type: ignore[assignment]
    client.statuses = []  # type: ignore[attr-defined]

    @client.feature("vllmCompanion/status")
    def _status(params: Any) -> None:
        client.statuses.append(params)  # type: ignore[attr-defined]

    if configuration is not None:
        client.set_configuration(configuration, section="vllmCompanion")
    caps = client_capabilities_for(capabilities) if isinstance(capabilities, str) else capabilities
    uris = [workspace] if isinstance(workspace, str) else workspace or []
    folders = [types.WorkspaceFolder(uri=uri, name=f"ws{i}") for i, uri in enumerate(uris)] or None
    result = await client.initialize_session(
        types.InitializeParams(capabilities=caps, initialization_options=init_options,
                               process_id=process_id or os.getpid(), workspace_folders=folders)
    )
    client.init_result = result  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 10)
        await client.stop()


def client_capabilities_for(name: str) -> types.ClientCapabilities:
    """pytest-lsp's recorded capabilities; "visual-studio-code" is VS Code 1.65's, so it gets the
    inline-completion capability that vscode-languageclient 11 (VS Code >= 1.91) declares."""
    caps = client_capabilities(name)
    if name == "visual-studio-code" and caps.text_document is not None:
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


def split_cursor(marked: str) -> tuple[str, types.Position]:
    """Text without the cursor mark, and the mark's position (UTF-16 columns)."""
    before, _, after = marked.partition(CURSOR)
    lines = before.split("\n")
    col = len(lines[-1].encode("utf-16-le")) // 2
    return before + after, types.Position(line=len(lines) - 1, character=col)


def open_doc(
    client: LanguageClient, marked: str, language: str = "python", name: str = ""
) -> tuple[str, types.Position]:
    text, pos = split_cursor(marked)
    uri = f"file:///work/{name or f'doc{next(_docs)}.py'}"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text))
    )
    return uri, pos


def inline_params(uri: str, pos: types.Position, automatic: bool = False) -> types.InlineCompletionParams:
    kind = types.InlineCompletionTriggerKind.Automatic if automatic else types.InlineCompletionTriggerKind.Invoked
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=pos,
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def inline(client: LanguageClient, uri: str, pos: types.Position, automatic: bool = False) -> str | None:
    return first_text(await client.text_document_inline_completion_async(inline_params(uri, pos, automatic)))


def send_inline(client: LanguageClient, uri: str, pos: types.Position, automatic: bool = False) -> tuple[str, Any]:
    """Send an inline-completion request without waiting: (message id, asyncio future)."""
    msg_id = f"req-{next(_docs)}"
    fut = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, pos, automatic), msg_id=msg_id
    )
    return msg_id, asyncio.wrap_future(fut)


def cancel(client: LanguageClient, msg_id: str) -> None:
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))


def first_text(result: Any) -> str | None:
    if not result:
        return None
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    if not items:
        return None
    text = items[0].insert_text
    return text if isinstance(text, str) else text.value


def type_text(client: LanguageClient, uri: str, version: int, pos: types.Position, text: str) -> types.Position:
    """Insert ``text`` (no newlines) at ``pos`` like an editor keystroke; returns the new cursor."""
    rng = types.Range(start=pos, end=pos)
    change = types.TextDocumentContentChangePartial(range=rng, text=text)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[change],
        )
    )
    width = len(text.encode("utf-16-le")) // 2
    return types.Position(line=pos.line, character=pos.character + width)


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def raw_request(client: LanguageClient, method: str, params: Any, timeout: float = 5.0) -> Any:
    """Write a request as raw JSON on the server's stdin (params unchecked) and await its answer."""
    import json
    from concurrent.futures import Future

    msg_id = f"raw-{next(_docs)}"
    fut: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = fut  # the client's reader resolves it
    body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()
    stdin = client._server.stdin  # type: ignore[union-attr]
    stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await stdin.drain()
    return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)


def capture_partials(client: LanguageClient) -> dict[Any, list[str]]:
    """Collect chat deltas sent as ``$/progress`` partial results, per token (pytest-lsp's own
    progress handler only knows work-done progress)."""
    partials: dict[Any, list[str]] = {}
    original = client.protocol.fm.features[types.PROGRESS]

    def on_progress(params: types.ProgressParams) -> None:
        value = params.value
        delta = value.get("delta") if isinstance(value, dict) else getattr(value, "delta", None)
        if delta is not None:
            partials.setdefault(params.token, []).append(delta)
        else:
            original(params)

    client.protocol.fm.features[types.PROGRESS] = on_progress
    return partials


async def chat_request(client: LanguageClient, params: dict[str, Any], timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async("vllmCompanion/chat", params), timeout)


def as_dict(obj: Any) -> Any:
    """Results of custom methods come back as namedtuples (pygls does the same to params on the
    server side, and the server's ``plain`` undoes it): plain data for assertions."""
    from vllm_companion.lsp.chat import plain

    return plain(obj)


async def inline_eventually(client: LanguageClient, uri: str, pos: types.Position, tries: int = 40) -> str | None:
    """Ask until an answer comes (while a server follows an engine to its new port)."""
    answer = None
    for _ in range(tries):
        answer = await inline(client, uri, pos)
        if answer:
            break
        await asyncio.sleep(0.25)
    return answer
