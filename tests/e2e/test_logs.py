"""What the server writes to its log (the editor's output panel) and to the editor before it has
``initialize``'s answer, over real stdio (issue 23, point 5): one line per failure at the default
level, tracebacks only at debug, no NVML line on every ``plan``, and nothing but what LSP 3.17
allows before the answer."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

# LSP 3.17 "initialize": until the server has answered it, it may send only these.
# https://microsoft.github.io/language-server-protocol/specifications/lsp/3.17/specification/#initialize
BEFORE_INITIALIZE = {"window/showMessage", "window/logMessage", "window/showMessageRequest", "telemetry/event"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawClient:
    """The server over its stdio, message by message, with nothing in between (pytest-lsp's
    client would answer or swallow what arrives before initialize's answer)."""

    def __init__(self, level: str, log_file: Path | None = None) -> None:
        command = [sys.executable, "-m", "vllm_companion", "--log-level", level]
        command += ["--log-file", str(log_file)] if log_file else []
        self.proc = subprocess.Popen([*command, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        self.stderr: list[bytes] = []
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr or []), daemon=True).start()

    def _read(self, out: IO[bytes]) -> None:
        while True:
            length = 0
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                self.inbox.put(None)
                return
            self.inbox.put(json.loads(out.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def until_answer(self, msg_id: int) -> list[dict[str, Any]]:
        """Every message up to and including the answer to ``msg_id``."""
        seen = []
        while (message := self.inbox.get(timeout=30)) is not None:
            seen.append(message)
            if message.get("id") == msg_id and "method" not in message:
                return seen
        raise AssertionError(f"the server closed its stdout before answering {msg_id}: {seen}")

    def initialize(self, options: dict[str, Any]) -> list[dict[str, Any]]:
        params = {"processId": os.getpid(), "capabilities": {}, "initializationOptions": options}
        self.send({"id": 1, "method": "initialize", "params": params})
        seen = self.until_answer(1)
        self.send({"method": "initialized", "params": {}})
        return seen

    def close(self) -> str:
        """Shut the server down; its stderr."""
        self.send({"id": 99, "method": "shutdown"})
        self.until_answer(99)
        self.send({"method": "exit"})
        self.proc.wait(15)
        return b"".join(self.stderr).decode()


def chat_to_closed_port(level: str, log_file: Path) -> dict[str, Any]:
    client = RawClient(level, log_file)
    try:
        client.initialize({"backend": {"endpoint": f"http://127.0.0.1:{closed_port()}/v1"}})
        ask = {"messages": [{"role": "user", "content": "hi"}]}
        client.send({"id": 2, "method": "vllmCompanion/chat", "params": ask})
        answer = client.until_answer(2)[-1]
    finally:
        client.close()
    return answer


def test_a_failed_chat_leaves_one_line_and_its_traceback_only_at_debug(tmp_path: Path) -> None:
    """A chat to a closed port wrote a five-level chained traceback (httpcore, httpx, openai, ours,
    pygls's) and two more lines about the same failure into the editor's output panel."""
    answer = chat_to_closed_port("info", tmp_path / "info.log")
    assert "cannot reach the engine" in answer["error"]["message"]
    text = (tmp_path / "info.log").read_text()
    assert "Traceback" not in text, text
    assert len([line for line in text.splitlines() if "cannot reach the engine" in line]) == 1, text
    assert all(line[:2].isdigit() for line in text.splitlines()), text  # every line is a record's
    chat_to_closed_port("debug", tmp_path / "debug.log")
    text = (tmp_path / "debug.log").read_text()
    assert "Traceback (most recent call last)" in text and "ConnectError" in text, text


def test_plan_writes_no_nvml_line() -> None:
    """A machine without NVIDIA's library wrote "INFO ... NVML Shared Library Not Found" on every
    ``plan``; the plan's own "why" already says there is no GPU."""
    done = subprocess.run([sys.executable, "-m", "vllm_companion", "plan"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "NVML" not in done.stderr and " INFO " not in done.stderr, done.stderr
    gpu = subprocess.run([sys.executable, "-m", "vllm_companion", "plan", "--gpu", "RTX 4060 Laptop:8188:900"],
                         capture_output=True, text=True, timeout=60, check=True)
    assert gpu.stderr == "" and "plan:" in gpu.stdout


def test_nothing_but_window_messages_before_the_initialize_answer() -> None:
    """A status notification went out while ``initialize`` was being handled; with a bad setting
    there is a ``window/showMessage`` too, which is allowed."""
    client = RawClient("info")
    try:
        options = {"backend": {"endpoint": f"http://127.0.0.1:{closed_port()}/v1"},
                   "completion": {"maxTokens": -5}}
        *before, answer = client.initialize(options)
        assert "result" in answer and answer["result"]["capabilities"]
        assert {m.get("method") for m in before} <= BEFORE_INITIALIZE, before
        assert all("id" not in m or m.get("method") == "window/showMessageRequest" for m in before), before
        # The status held back arrives once the editor has the answer.
        first = client.inbox.get(timeout=30)
        while first is not None and first.get("method") != "vllmCompanion/status":
            first = client.inbox.get(timeout=30)
        assert first is not None and first["params"]["state"] in ("starting", "unavailable")
    finally:
        client.close()
