"""The engine for the real-VS-Code test (vscode.e2e.mjs): tests/fake_backend.py's fake
OpenAI-compatible server on a real socket, scripted for the scenarios there.

- completions answer ``COMPLETION`` (the ghost text the test waits for);
- an edit (the server's edit system prompt, server/vllm_companion/chat/edit.py) answers ``REWRITE``
  in a fenced block: the test checks the diff shows it and Accept applies it;
- any other chat answers a short markdown reply, then many slow words (long enough to press Stop);
- the next-edit scenario's file (``NO_GHOST_IN``) gets no completion, so no ghost text takes
  precedence over the next edit, and a next-edit prompt (the server's generic format asks for
  ``NO_EDIT``) answers ``NO_EDIT``: the suggestion the test accepts comes from edit propagation.

It prints its port on the first line, then one line per generation request
(``generation completion|edit|chat``), so the test can tell that a snoozed editor sent nothing.
Run from anywhere: ``python extension/test/e2e/fake_engine.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.fake_backend import FakeBackend, Reply

COMPLETION = "compute_total(items)"
REWRITE = "def grand_total(items):\n    return sum(items)\n"
NO_GHOST_IN = "def scale("  # vscode.e2e.mjs's scale.py
NO_EDIT = "NO_EDIT"  # server/vllm_companion/nextedit/formats.py GENERIC_NO_EDIT
CHAT_WORDS = 400
CHAT_DELAY_S = 0.05


def reply(body: dict[str, Any]) -> Reply:
    messages = body.get("messages")
    if not messages:
        print("generation completion", flush=True)
        return Reply(chunks=[] if NO_GHOST_IN in str(body.get("prompt", "")) else [COMPLETION])
    if f"answer exactly {NO_EDIT}" in str(messages[0].get("content", "")):
        print("generation next-edit", flush=True)
        return Reply(chunks=[NO_EDIT])
    if str(messages[0].get("content", "")).startswith("You rewrite code"):
        print("generation edit", flush=True)
        return Reply(chunks=["```python\n", REWRITE, "```\n"])
    print("generation chat", flush=True)
    head = ["Here is ", "**an answer** ", "with code:\n\n```python\n", "print('hi')\n", "```\n\n"]
    return Reply(chunks=head + [f"word{i} " for i in range(CHAT_WORDS)], delay_s=CHAT_DELAY_S)


async def main() -> None:
    fake = await FakeBackend().start(0)
    fake.default = reply
    print(fake.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
