"""The settings' sections, one model each, every field defaulted (docs/configuration.md is
generated from them: scripts/gen_config_docs.py; VS Code's settings too:
scripts/gen_extension_config.py). ``config.Config`` holds one of each; config.py is where they are
merged from their sources and validated."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.alias_generators import to_camel

WorkerUrl = Annotated[str, StringConstraints(pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+:\d{1,5}/?$", max_length=300)]


class Section(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def check_http_url(value: str) -> str:
    """An endpoint must be an http(s) URL with a host: anything else is a bad setting now, not a
    "cannot reach the engine" at the first request (httpx's UnsupportedProtocol, issue 23)."""
    url = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if (len(url) > 2048 or parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or any(c.isspace() or ord(c) < 32 for c in url)):
        raise ValueError("not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    return url


class BackendSettings(Section):
    endpoint: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible base URL (with /v1).")
    model: str | None = Field(None, description="Served model id; None = first model the endpoint lists.")
    api_key: str | None = Field(None, description="Bearer token for the endpoint, if it needs one.")
    launch: bool = Field(False, description="Start and supervise a local engine instead of attaching.")
    context_length: int = Field(
        2048, ge=256, description="Context window assumed when the endpoint does not report max_model_len."
    )
    connect_timeout_s: float = Field(3.0, gt=0, description="TCP connect timeout.")
    first_token_timeout_s: float = Field(10.0, gt=0, description="Longest wait for the first streamed token.")
    total_timeout_s: float = Field(60.0, gt=0, description="Longest any backend request may take.")
    health_interval_s: float = Field(15.0, ge=0.1, description="How often an attached endpoint's health is checked.")
    priority: bool | None = Field(
        None,
        description="Send a request priority (completion before edit before chat; vLLM's --scheduling-policy "
        "priority). Unset: on for the engine this server launches, off for others (vLLM rejects priorities "
        "it was not started for).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra HTTP headers sent on every request (a gateway's or Cloudflare Access's tokens).",
    )

    @field_validator("endpoint")
    @classmethod
    def _http_endpoint(cls, value: str) -> str:
        return check_http_url(value)


ContextSource = Literal["imports", "open-files", "recent-edits"]
DEFAULT_SOURCES: tuple[ContextSource, ...] = ("open-files", "recent-edits")


class CompletionSettings(Section):
    enabled: bool = Field(True, description="Offer inline completions while typing (off: only when asked, Alt+\\).")
    debounce_ms: int = Field(150, ge=0, le=5000, description="Wait after the last keystroke (automatic only); "
                             "with adaptiveDebounce, until the user's own typing rhythm is known.")
    adaptive_debounce: bool = Field(True, description="Adapt the wait (100-1000 ms) to the user's keystroke "
                                    "intervals.")
    max_tokens: int = Field(128, ge=1, le=4096, description="Most tokens generated per completion.")
    max_lines: int = Field(16, ge=1, le=500, description="Most lines in a multi-line completion.")
    max_prompt_tokens: int = Field(2048, ge=64, description="Upper bound on prompt size, whatever the model allows.")
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature (low: FIM wants the likely text).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling for completions.")
    family: str = Field("auto", max_length=64,
                        description="Prompt family: auto or a family name (see docs/prompts.md).")
    timeout_ms: int = Field(5000, ge=100, description="Wall-clock cap for one inline completion.")
    cache_size: int = Field(256, ge=0, description="Entries in the completion cache (0 disables it).")
    cache_ttl_s: float = Field(300, ge=0, description="Seconds a cached completion stays valid.")
    disabled_languages: list[str] = Field(default_factory=list, description="languageIds with no completions.")
    context_sources: list[ContextSource] = Field(
        default_factory=lambda: list(DEFAULT_SOURCES), max_length=8,
        description="Context beyond the file: similar snippets of open files, recent edits elsewhere, and "
        "(opt-in: it cost edit similarity on the CPU benchmark, docs/performance.md) definitions imported from "
        "the workspace ([] for none).",
    )
    commented_context: bool = Field(True, description="Context as commented snippets for model families "
                                    "without file tokens (docs/performance.md).")
    context_tokens: int = Field(512, ge=0, le=8192, description="Most prompt tokens for context beyond the file "
                                "(at most a quarter of the prompt).")
    context_timeout_ms: int = Field(100, ge=1, le=2000, description="Deadline for the context sources; a slower "
                                    "one is skipped.")
    telemetry: bool = Field(True, description="Keep acceptance events on this machine (never sent; "
                            "`vllm-companion stats`).")
    survival_checks_s: list[float] = Field(default_factory=lambda: [30.0, 120.0], min_length=2, max_length=2,
                                           description="When an accepted suggestion's survival is measured.")
    learn: bool = Field(True, description="Tune maxTokens and single/multi-line from what you accept.")
    prefetch: bool = Field(True, description="After an accept, prepare the suggestion at the new cursor.")
    warm_on_open: bool = Field(True, description="When a file is opened or focused, have the engine read the head "
                               "of its next prompt (1 token, lowest priority), so the first completion is fast.")
    ablate: list[Literal["stop", "single-line", "suffix-retype", "scope", "max-lines", "loops"]] = Field(
        default_factory=list, max_length=16,
        description="Stages or policies switched off (for scripts/bench_quality.py ablations).")
    completion_items: Literal["auto", "always", "never"] = Field(
        "auto", description="Offer textDocument/completion items: auto = only to clients without inline completion."
    )


class ChatSettings(Section):
    model: str | None = Field(None, description="Model for chat on the same endpoint (default: the completion model).")
    max_tokens: int = Field(1024, ge=16, le=32768, description="Most tokens in one chat answer.")
    temperature: float = Field(0.3, ge=0, le=2, description="Sampling temperature for chat answers.")
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling for chat answers.")
    max_concurrent: int = Field(1, ge=1, le=16, description="Chat answers streaming at once (keeps completion fast).")
    template: str = Field("auto", max_length=64,
                          description="Fallback chat template: auto, chatml, deepseek-coder, llama-inst, ...")
    exclude_globs: list[str] = Field(
        default_factory=list, description="Files never sent as context (on top of .env, keys, certificates)."
    )
    system_prompt: str | None = Field(None, max_length=16384, description="Replaces the built-in system prompt.")


class EngineSettings(Section):
    """Local engine (used when backend.launch is true). Unset fields come from the launch plan."""

    kind: Literal["vllm", "llamacpp"] = Field("vllm", description="vllm (GPU or CPU build) or llamacpp.")
    device: Literal["auto", "cuda", "cpu"] = Field("auto", description="auto: CUDA when NVML sees a GPU.")
    model: str | None = Field(None, description="Hub id or local folder; default from the sizing guide.")
    served_name: str | None = Field(None, description="Name the engine serves the model under.")
    quantization: str | None = Field(None, description="e.g. awq; default from the plan.")
    dtype: str | None = Field(None, description="auto, bfloat16, float16; default from the plan.")
    gpu_memory_utilization: float | None = Field(None, gt=0.1, le=0.99, description="vLLM --gpu-memory-utilization.")
    max_model_len: int | None = Field(None, ge=256, description="vLLM --max-model-len (context window).")
    max_num_seqs: int | None = Field(None, ge=1, description="vLLM --max-num-seqs (concurrent sequences).")
    enforce_eager: bool | None = Field(None, description="vLLM --enforce-eager (no CUDA graphs: less memory).")
    tensor_parallel: int | None = Field(None, ge=1, description="GPUs to split the model over.")
    inventory: str | None = Field(None, description="A JSON file of hosts and GPUs: plan across hosts (Ray).")
    replicas: int | None = Field(None, ge=1, le=64, description="Engine replicas behind vLLM's router (a fleet).")
    workers: list[WorkerUrl] | None = Field(
        None, max_length=64, description="Other hosts' engines (http://host:port) for the fleet's router.")
    python: str | None = Field(None, description="Interpreter that has the engine installed (default: this one).")
    host: str = Field("127.0.0.1", description="Address the engine listens on (team server: 0.0.0.0, with a key).")
    port: int | None = Field(None, ge=1, le=65535, description="The engine's port (default: a free one).")
    api_key: str | None = Field(None, description="The engine's API key (default: a random one per engine).")
    team_max_tokens: int = Field(4096, ge=1, le=1 << 20, description="A team server: the most tokens one request "
                                 "may generate (the front clamps to it; engine/front_limits.py).")
    command: list[str] | None = Field(None, description="Replaces [python, -m, module] (a wrapper or test engine).")
    keep_alive: bool = Field(False, description="Leave the engine running when the last editor closes.")
    ready_timeout_s: float = Field(1800, gt=0, description="Longest wait for the engine to become ready.")
    stall_timeout_s: float = Field(300, gt=0, description="Restart a start that shows no progress this long.")

    def overrides(self) -> dict[str, object]:
        """Only what the user set (defaults are the plan's business)."""
        return {k: v for k, v in self.model_dump(by_alias=True, exclude_defaults=True).items() if v is not None}


class NextEditSettings(Section):
    """Next-edit suggestions (textDocument/copilotInlineEdit; docs/next-edit.md)."""

    enabled: bool = Field(True, description="Answer next-edit requests (edit propagation, and a model when one "
                          "is configured).")
    timeout_ms: int = Field(3000, ge=100, le=30000, description="Wall-clock cap for one next-edit request.")
    family: str = Field("auto", max_length=64,
                        description="Next-edit prompt family: auto (from the model's name) or a family name.")
    propagation: bool = Field(True, description="Offer a rename or retyped literal at its next occurrence "
                              "(no model).")
    history_edits: int = Field(8, ge=0, le=64, description="Most recent edits shown to a next-edit model.")
    history_tokens: int = Field(1024, ge=0, le=8192, description="Most prompt tokens for the recent edits.")
    max_tokens: int = Field(512, ge=16, le=4096, description="Most tokens of one predicted region.")
    model: Literal["auto", "on", "off"] = Field(
        "auto", description="When the model is asked for a next edit: auto (a next-edit model is served, or the "
        "engine is a GPU engine or an endpoint you attached; not the generic prompt on a launched CPU engine), on, "
        "off (edit propagation only).")


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] | None = Field(
        None, description="Log level; unset keeps the command line's --log-level (default info)."
    )
    file: str | None = Field(None, description="Log file path; stderr when unset. Never stdout.")
