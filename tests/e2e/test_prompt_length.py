"""A prompt the engine finds too long (denser than the token estimate): the request is retried at
half the budget and answered; one dense file does not shrink every later prompt, repeated
rejections do (the budget then sticks for that model)."""

from __future__ import annotations

from typing import Any

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, open_doc, options, session

LIMIT = 4000  # characters the fake engine takes; the full budget's prompt is about 6,000
TOO_LONG = ("This model's maximum context length is 2048 tokens. However, you requested 2300 tokens "
            "(2172 in the messages, 128 in the completion). Please reduce the length of the messages or completion.")


def engine(body: dict[str, Any]) -> Reply:
    return Reply(status=400, error_body=TOO_LONG) if len(body.get("prompt", "")) > LIMIT else Reply(chunks=["ok"])


async def test_too_long_is_retried_smaller_and_learned_only_when_it_repeats(backend: FakeBackend) -> None:
    backend.default = engine
    dense = "".join(f"v{i} = (({i}))\n" for i in range(3000))
    async with session(options(backend.url, maxPromptTokens=2048, cacheSize=0)) as client:
        sizes: list[list[int]] = []
        for n in range(5):
            uri, pos = open_doc(client, dense + f"y{n} = █\n")
            before = len(backend.generation_requests())
            assert await inline(client, uri, pos) == "ok"
            sizes.append([len(r.body["prompt"]) for r in backend.generation_requests()[before:]])
    for attempt in sizes[:3]:  # rejected at the full budget, answered at half of it
        assert len(attempt) == 2 and attempt[0] > LIMIT >= attempt[1]
    for attempt in sizes[3:]:  # three rejections: the smaller budget sticks, no more rejections
        assert len(attempt) == 1 and attempt[0] <= LIMIT
