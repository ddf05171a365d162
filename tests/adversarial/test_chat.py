"""Attacks on a chat's messages (``vllmCompanion/chat``: lsp/chat.py, chat/context.py,
redaction.py ``redact_ends``), over real stdio against the fake engine on a real socket.

Each case is named after what it attacks: a 10 MB message (redacted whole before it was cut to the
budget: 1.5-3.3 s of the event loop), the same as an older turn of the history, and secrets placed
where the cut falls (a part of one must not go out in clear)."""

from __future__ import annotations

import asyncio
import json
import time

from tests.adversarial.test_context import pings
from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, chat_request, open_doc, options, session
from vllm_companion.chat.context import CUT_MARK_TOKENS, build_messages, message_tokens
from vllm_companion.privacy import Privacy
from vllm_companion.tokens import chars_within

TOKEN = "ghp_" + "Zq8Rw3Lx" * 5  # a GitHub token (redaction.py's pattern), 44 characters
HUGE = 10_000_000
LINE = "    total = compute(total, item)  # the same line again\n"
# What a trivial request may wait while a 10 MB chat arrives: pygls turns the request's params into
# namedtuples by a JSON round trip on the event loop (``_dict_to_object``, before lsp/chat.py sees
# them: 0.1-0.3 s of 10 MB on a loaded 2-core machine); the prompt's assembly took 1.5-3.3 s more.
PING_CAP_S = 0.5


def huge_text() -> str:
    """~10 MB of code with a secret at each end, where a budget cut keeps them."""
    body = LINE * (HUGE // len(LINE))
    return f"token = '{TOKEN}'\n{body}token = '{TOKEN}'\n"


async def chat_while_pinging(backend: FakeBackend, messages: list[dict[str, str]]) -> tuple[str, list[float], str]:
    """The chat's answer, the round trips of a trivial request meanwhile, and what the engine got."""
    backend.default = Reply(chunks=["ok"])
    stop = asyncio.Event()
    async with session(options(backend.url)) as client:
        small, _ = open_doc(client, "x = 1█")
        pinger = asyncio.ensure_future(pings(client, small, stop))
        await asyncio.sleep(0.3)
        answer = as_dict(await chat_request(client, {"messages": messages}, timeout=30))
        await asyncio.sleep(0.2)
        stop.set()
        times = await pinger
    sent = json.dumps(backend.generation_requests()[-1].body["messages"])
    return answer["content"], times, sent


async def test_a_10_mb_chat_message_neither_stalls_the_server_nor_goes_out_whole(backend: FakeBackend) -> None:
    answer, times, sent = await chat_while_pinging(backend, [{"role": "user", "content": huge_text()}])
    assert answer == "ok"
    assert len(times) > 5 and max(times) < PING_CAP_S, sorted(times)[-5:]
    assert len(sent) < 4096 * 3  # the fake engine's 4,096-token window, three characters a token at most
    assert "characters left out" in sent and "<redacted:github-token:" in sent and "Zq8Rw3Lx" not in sent


async def test_a_10_mb_turn_in_the_history_neither_stalls_the_server_nor_goes_out(backend: FakeBackend) -> None:
    history = [{"role": "user", "content": huge_text()}, {"role": "assistant", "content": "noted"},
               {"role": "user", "content": "and now?"}]
    answer, times, sent = await chat_while_pinging(backend, history)
    assert answer == "ok"
    assert len(times) > 5 and max(times) < PING_CAP_S, sorted(times)[-5:]
    assert "and now?" in sent and "compute(total" not in sent and "Zq8Rw3Lx" not in sent


def test_a_10_mb_question_costs_the_budget_not_its_size() -> None:
    """The assembly alone, in this thread: the ends are read, not the 10 MB (before: 1.5-3.3 s)."""
    for history in ([{"role": "user", "content": huge_text()}],
                    [{"role": "user", "content": huge_text()}, {"role": "user", "content": "and?"}]):
        started = time.perf_counter()
        messages, _ = build_messages(history, [], 3_000, "s", Privacy())
        assert time.perf_counter() - started < 0.1
        assert sum(len(m["content"]) for m in messages) < 3_000 * 3


def test_a_secret_where_the_budget_cuts_the_question_goes_out_whole_or_not_at_all() -> None:
    """The question is cut before it is redacted: a secret across either cut was left in part in
    clear. Each offset around both cuts: no eight characters of the token's secret part get out."""
    start = time.perf_counter()
    budget, size = 2_600, 200_000
    cut = chars_within(budget - message_tokens({"content": "s"}) - CUT_MARK_TOKENS) // 2  # chat/context.py
    for offset in range(-60, 60, 3):
        for at_tail in (False, True):
            filler = ["x"] * size
            where = (size - cut if at_tail else cut) - len(TOKEN) // 2 + offset
            filler[where : where + len(TOKEN) + 2] = f" {TOKEN} "
            messages, _ = build_messages([{"role": "user", "content": "".join(filler)}], [], budget, "s", Privacy())
            text = messages[-1]["content"]
            assert "characters left out" in text
            secret = TOKEN[4:]
            assert not any(secret[k : k + 8] in text for k in range(len(secret) - 7)), (offset, at_tail)
    assert time.perf_counter() - start < 5  # 80 questions of 200,000 characters: only their ends are read


async def test_a_clients_system_message_neither_carries_a_secret_out_nor_goes_out_whole(backend: FakeBackend) -> None:
    """chat/service.py joins the client's system messages to ours: they went out unredacted and
    uncut (the token in clear, all 10 MB of it, the question squeezed out of the budget)."""
    messages = [{"role": "system", "content": huge_text()}, {"role": "user", "content": "and now?"}]
    answer, times, sent = await chat_while_pinging(backend, messages)
    assert answer == "ok"
    assert len(times) > 5 and max(times) < PING_CAP_S, sorted(times)[-5:]
    assert "Zq8Rw3Lx" not in sent and "<redacted:github-token:" in sent
    assert len(sent) < 4096 * 3 and "and now?" in sent and "You are vLLM Companion" in sent


def test_a_short_system_message_with_a_secret_is_redacted() -> None:
    messages, _ = build_messages([{"role": "user", "content": "hi"}], [], 3_000, f"s {TOKEN} s", Privacy())
    assert TOKEN not in json.dumps(messages) and "<redacted:github-token:1>" in messages[0]["content"]


def long_key(size: int) -> tuple[str, str]:
    """A PEM private key of ``size`` bytes (an RSA key of 16384 bits and up, a bundle), and its body."""
    import base64
    import random

    body = base64.b64encode(random.Random(size).randbytes(size)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----", body


def leaked(text: str, body: str) -> bool:
    flat = text.replace("\n", "")
    return any(body[k : k + 16] in flat for k in range(0, len(body) - 16, 5))


def test_a_private_key_longer_than_the_reach_goes_out_as_a_placeholder_not_its_tail() -> None:
    """The key pattern took 16,384 characters and left the rest in clear, sent whole or cut
    (``redact_ends`` reads 17 KiB past a cut: a 20 KiB key's end in the tail had no header in reach)."""
    from vllm_companion.redaction import redact

    for size in (13_000, 15_000, 20_000, 60_000):
        key, body = long_key(size)
        assert not leaked(redact(f"a = 1\n{key}\nb = 2\n").text, body), size
        budget = 2_600
        cut = chars_within(budget - message_tokens({"content": "s"}) - CUT_MARK_TOKENS) // 2
        for where in (0.05, 0.5, 0.95):
            for at_tail in (False, True):
                text = "x = 1\n" * 20_000
                at = (len(text) - cut if at_tail else cut) - int(len(key) * where)
                question = f"{text[:at]}\n{key}\n{text[at:]}"
                messages, _ = build_messages([{"role": "user", "content": question}], [], budget, "s", Privacy())
                assert not leaked(messages[-1]["content"], body), (size, where, at_tail)
