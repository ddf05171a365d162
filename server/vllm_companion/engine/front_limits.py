"""What one keyed member of a team may ask of the shared engine: the front (engine/front.py) passes
every generation request through ``Limits.apply`` before it forwards it (docs/security.md).

The key says who may use the engine, not how much of it: one request body can otherwise ask vLLM
for many choices at once, a generation as long as the context, the whole vocabulary's log
probabilities for every prompt token, a grammar whose compilation takes the engine's CPU, or a
place ahead of everyone in the queue. So the body is parsed once (JSON only: no NaN, no nesting
past Python's recursion limit), and only what was checked goes on, re-serialised: the engine
reads exactly what the front read (two keys of one name cannot mean two things to two parsers;
a number past a float's range or a lone surrogate, which cannot be written back, is a 400).

The fields are vLLM 0.32's ``CompletionRequest`` and ``ChatCompletionRequest``
(vllm/entrypoints/openai/{completion,chat_completion}/protocol.py), plus older vLLM's
``best_of`` and ``guided_*``:

- bounded, else 400: ``n``/``best_of`` must be 1 (each choice is a whole generation);
  ``logprobs``/``top_logprobs`` at most ``MAX_LOGPROBS`` (vLLM reads -1 as the whole vocabulary);
  ``echo`` true or false, and true neither with ``logprobs`` (0 included) on a completion nor on a
  chat (vLLM then takes the prompt's log probabilities, on a chat from ``top_logprobs``, 0 unless
  given); one prompt per request (a list of prompts is a batch); ``stop`` and ``bad_words``
  strings of at most ``MAX_STOP_CHARS``, at most ``MAX_STOPS`` stops (checked at every token);
  token lists and ``logit_bias`` at most ``MAX_ITEMS``; ``stream_options`` its two flags;
  structured output and what the engine compiles into one (``response_format``,
  ``structured_outputs``, ``tools``, ``tool_choice``, ``guided_*``, ``chat_template_kwargs``)
  at most ``MAX_GRAMMAR`` bytes together; message parts text only, with no ``uuid`` and no media
  key (an image or audio URL is fetched by the engine, from inside the team's network, and vLLM
  reads a part that has a ``uuid`` by its keys, whatever its type);
- clamped: ``max_tokens``/``max_completion_tokens``/``min_tokens`` to the front's cap
  (``--max-tokens``; ``max_tokens`` at least 1 and always written: absent, a chat gets its
  ``max_completion_tokens`` or the cap and a completion OpenAI's 16, where vLLM would give a chat
  the whole context, and llama.cpp either, also for 0 or less); ``priority`` to at least 0 (lower runs
  first: a member may wait, not overtake an editor's completion);
- refused (``REFUSED``): code or tensors loaded by the engine (``logits_processors``,
  ``prompt_embeds``: vLLM's torch.load, CVE-2025-62164), transfers to other hosts
  (``kv_transfer_params``), a client's chat template, multimodal inputs, ``prompt_logprobs``;
- removed: ``request_id`` (vLLM aborts every request sharing an id, as with ``X-Request-Id``)
  and any field vLLM does not know (it ignores them; llama.cpp's ``n_predict`` or ``grammar``
  would bypass the caps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_TOKENS = 4096  # the front's default cap (--max-tokens): an editor's chat asks for up to 2048
COMPLETION_DEFAULT = 16  # OpenAI's and vLLM's max_tokens for /v1/completions when none is given
MAX_LOGPROBS = 5  # OpenAI's own limit for the completions API
MAX_STOPS = 16  # OpenAI allows 4; our prompt families send at most a handful
MAX_STOP_CHARS = 256
MAX_ITEMS = 300  # logit_bias (OpenAI's limit), stop_token_ids, allowed_token_ids, bad_words
MAX_GRAMMAR = 16 << 10  # a JSON schema an editor's tool call needs is a few KiB
MAX_DEPTH = 32  # of those fields' nesting: a grammar compiler recurses too
INLINE = 64 << 10  # bodies up to this size are checked on the event loop; larger ones in a thread
CHAT = "/v1/chat/completions"

PLAIN = frozenset({
    "model", "suffix", "stream", "temperature", "top_p", "top_k", "min_p", "seed", "frequency_penalty",
    "presence_penalty", "repetition_penalty", "length_penalty", "use_beam_search", "ignore_eos",
    "include_stop_str_in_output", "skip_special_tokens", "spaces_between_special_tokens", "add_special_tokens",
    "truncate_prompt_tokens", "truncation_side", "user", "session_id", "cache_salt", "return_token_ids",
    "return_tokens_as_token_ids", "return_token_offsets", "return_prompt_text", "add_generation_prompt",
    "continue_final_message", "documents", "include_reasoning", "reasoning_effort", "thinking_token_budget",
    "parallel_tool_calls", "stream_interval", "echo"})
CHECKED = frozenset({"prompt", "messages", "n", "best_of", "max_tokens", "max_completion_tokens", "min_tokens",
                     "priority", "logprobs", "top_logprobs", "stop", "stream_options"})
ITEMS = ("stop_token_ids", "allowed_token_ids", "bad_words", "logit_bias", "logprob_token_ids")
GRAMMAR = ("response_format", "structured_outputs", "tools", "tool_choice", "chat_template_kwargs", "guided_json",
           "guided_regex", "guided_grammar", "guided_choice", "guided_whitespace_pattern", "guided_decoding_backend")
REFUSED = {
    "logits_processors": "loads code into the engine", "prompt_embeds": "is deserialised by the engine (torch.load)",
    "vllm_xargs": "feeds custom logits processors", "kv_transfer_params": "points the engine at other hosts",
    "ec_transfer_params": "points the engine at other hosts", "chat_template": "runs a client's template",
    "prompt_logprobs": "costs the whole vocabulary for every prompt token", "mm_payload": "is multimodal input",
    "mm_processor_kwargs": "is multimodal input", "media_io_kwargs": "is multimodal input",
    "return_mm_kwargs": "is multimodal input", "repetition_detection": "costs engine CPU at every token",
    "watermarking": "is not served here", "routed_experts_prompt_start": "is not served here"}
KNOWN = PLAIN | CHECKED | frozenset(ITEMS) | frozenset(GRAMMAR)
TEXT_PARTS = frozenset({"text", "input_text", "output_text", "refusal", "thinking"})
MEDIA_KEYS = frozenset({"image_url", "image_pil", "image_embeds", "audio_embeds", "video_embeds", "prompt_embeds",
                        "audio_url", "input_audio", "video_url", "input_image", "file", "tool_reference"})
STREAM_OPTIONS = frozenset({"include_usage", "continuous_usage_stats"})


class Refused(Exception):
    """The request asks for more than a team member gets; the message is the client's 400."""


@dataclass(frozen=True)
class Checked:
    body: bytes  # what to forward
    model: str | None  # the body's ``model`` when it is a string: the front routes on it (engine/front_route.py)


@dataclass(frozen=True)
class Limits:
    max_tokens: int  # the most tokens one request may generate (the front's --max-tokens)

    def apply(self, path: str, raw: bytes) -> Checked:
        """The body to forward for a POST to ``path`` and the model it names, or ``Refused`` with
        why not."""
        try:
            body = _parse(raw)
            refused = [name for name in REFUSED if body.get(name) is not None]
            if refused:
                raise Refused(f"{refused[0]} is not accepted by this team server: it {REFUSED[refused[0]]}")
            kept = {name: value for name, value in body.items() if name in KNOWN}
            for check in (_one_choice, _stops, _sizes):
                check(kept)
            _logprobs(kept, path)
            _one_prompt(kept, path)
            self._budget(kept, path)
            if (priority := kept.get("priority")) is not None:
                kept["priority"] = max(0, _integer(priority, "priority"))
            model = kept.get("model")
            out = json.dumps(kept, ensure_ascii=False, allow_nan=False).encode()
            return Checked(out, model if isinstance(model, str) else None)
        except RecursionError as exc:  # nested deeper than Python parses or writes
            raise Refused("the body is nested too deeply") from exc
        except ValueError as exc:  # 1e999 reads as inf, "\ud800" as a lone surrogate: neither is JSON
            raise Refused("the body cannot be forwarded: a number past a float's range or text that is "
                          "not Unicode (a lone surrogate)") from exc

    def _budget(self, body: dict[str, Any], path: str) -> None:
        """Every token budget at most the cap, and ``max_tokens`` always written: llama-cpp-python
        generates to the end of the context when it is 0, negative or absent from a chat, and does
        not read ``max_completion_tokens`` (a chat's ``max_tokens`` is then that, as vLLM reads it;
        none given: the cap for a chat, 16 for a completion)."""
        for name in ("max_tokens", "max_completion_tokens", "min_tokens"):
            if body.get(name) is not None:
                if (value := _integer(body[name], name)) < 1 and name != "min_tokens":
                    raise Refused(f"{name} must be at least 1 on this team server")
                body[name] = min(value, self.max_tokens)
        if body.get("max_tokens") is None:
            chat = body.get("max_completion_tokens") or self.max_tokens
            body["max_tokens"] = chat if path == CHAT else min(COMPLETION_DEFAULT, self.max_tokens)


def _parse(raw: bytes) -> dict[str, Any]:
    def constant(name: str) -> None:
        raise Refused(f"{name} is not JSON")

    try:
        body = json.loads(raw, parse_constant=constant)
    except ValueError as exc:  # UnicodeDecodeError and over-long integers included
        raise Refused("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    return body


def _integer(value: object, name: str) -> int:
    if type(value) is not int:
        raise Refused(f"{name} must be an integer")
    return value


def _one_choice(body: dict[str, Any]) -> None:
    for name in ("n", "best_of"):
        if body.get(name) is not None and _integer(body[name], name) != 1:
            raise Refused(f"{name} must be 1 on this team server: each choice is a whole generation")


def _one_prompt(body: dict[str, Any], path: str) -> None:
    """One prompt (a string or a list of token ids), and chat messages of text only."""
    prompt = body.get("prompt")
    if path != CHAT and isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        if len(prompt) > 1:
            raise Refused("one prompt per request on this team server (a list of prompts is a batch)")
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if not _text_part(part):
                raise Refused("only text message parts are accepted by this team server (the engine would "
                              "fetch a media URL)")


def _text_part(part: object) -> bool:
    """A part vLLM reads as text: of a text type, and with no ``uuid`` and no media key (vLLM 0.32's
    renderers/chat_utils.py reads a part that has a ``uuid`` by its keys, whatever its type says)."""
    return (isinstance(part, dict) and part.get("type") in TEXT_PARTS and part.get("uuid") is None
            and not MEDIA_KEYS & part.keys())


def _logprobs(body: dict[str, Any], path: str) -> None:
    """At most ``MAX_LOGPROBS`` a token, and none for the prompt: vLLM turns ``echo`` (which it
    reads laxly: 1, "yes" and "on" are true) into ``prompt_logprobs``, taken on a completion from
    ``logprobs`` (0 included) and on a chat from ``top_logprobs`` (0 when not given)."""
    for name in ("logprobs", "top_logprobs"):
        value = body.get(name)
        if value is not None and not isinstance(value, bool) and not 0 <= _integer(value, name) <= MAX_LOGPROBS:
            raise Refused(f"{name} must be from 0 to {MAX_LOGPROBS} on this team server")
    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise Refused("echo must be true or false")
    if echo and (path == CHAT or body.get("logprobs") is not None):
        raise Refused("echo with logprobs, or on a chat (the prompt's log probabilities), is not accepted by this "
                      "team server")


def _stops(body: dict[str, Any]) -> None:
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    if stop is not None and not isinstance(stop, str | list):
        raise Refused("stop must be a string or a list of strings")
    if len(stops) > MAX_STOPS or not all(isinstance(s, str) and len(s) <= MAX_STOP_CHARS for s in stops):
        raise Refused(f"stop: at most {MAX_STOPS} strings of at most {MAX_STOP_CHARS} characters")


def _sizes(body: dict[str, Any]) -> None:
    """Token lists, ``stream_options`` and everything compiled into a grammar, bounded."""
    for name in ITEMS:
        value = body.get(name)
        if isinstance(value, list | dict) and len(value) > MAX_ITEMS:
            raise Refused(f"{name}: at most {MAX_ITEMS} entries on this team server")
    words = body.get("bad_words")  # each one's tokens compared with the output at every step
    if isinstance(words, list) and not all(isinstance(w, str) and len(w) <= MAX_STOP_CHARS for w in words):
        raise Refused(f"bad_words: strings of at most {MAX_STOP_CHARS} characters on this team server")
    options = body.get("stream_options")
    if options is not None and not (isinstance(options, dict) and set(options) <= STREAM_OPTIONS
                                    and all(isinstance(v, bool) for v in options.values())):
        raise Refused(f"stream_options may only hold {', '.join(sorted(STREAM_OPTIONS))} (true or false)")
    grammar = {name: body[name] for name in GRAMMAR if body.get(name) is not None}
    if grammar and (len(json.dumps(grammar).encode()) > MAX_GRAMMAR or _depth(grammar) > MAX_DEPTH):
        raise Refused(f"{', '.join(grammar)}: at most {MAX_GRAMMAR} bytes and {MAX_DEPTH} levels together on "
                      "this team server (the engine compiles them into a grammar)")


def _depth(value: object) -> int:
    """How deep ``value`` nests (checked after its size: at most ``MAX_GRAMMAR`` bytes to walk)."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        level += [(child, depth + 1) for child in children]
    return deepest
