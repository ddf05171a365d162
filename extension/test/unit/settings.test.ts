import { describe, expect, it } from "vitest";
import { toServerOptions } from "../../src/settings";

// The user's own settings only (inspect: globalValue), unless a folder's are given too.
const reader = (values: Record<string, unknown>, folder: Record<string, unknown> = {}) => ({
  get: <T>(key: string) => (key in folder ? folder[key] : values[key]) as T | undefined,
  inspect: <T>(key: string) => ({ globalValue: values[key] as T | undefined, workspaceValue: folder[key] as T | undefined }),
});

describe("toServerOptions", () => {
  it("maps set values into the server's sections and leaves unset ones out", () => {
    const opts = toServerOptions(reader({
      "backend.launch": false, "backend.endpoint": "http://h:8000/v1", "backend.model": null,
      "completion.debounceMs": 80, "completion.disabledLanguages": ["markdown"], "chat.maxTokens": 256, "chat.model": "big-chat-model",
      "engine.kind": "llamacpp", "backend.apiKey": "from-a-workspace-settings-file",
    }));
    expect(opts).toEqual({
      backend: { launch: false, endpoint: "http://h:8000/v1" },
      engine: { kind: "llamacpp" },
      completion: { debounceMs: 80, disabledLanguages: ["markdown"] },
      chat: { model: "big-chat-model", maxTokens: 256 },
      log: {},
    });
  });
});

describe("the API key", () => {
  it("comes from secret storage only, never from settings", () => {
    const opts = toServerOptions(reader({ "backend.apiKey": "settings-key" }), "secret-key");
    expect(opts.backend).toEqual({ apiKey: "secret-key" });
  });
});

describe("a folder's settings", () => {
  it("cannot choose where code and keys go, nor what runs", () => {
    const user = { "backend.endpoint": "http://mine:8000/v1", "engine.kind": "vllm" };
    const folder = { "backend.endpoint": "http://theirs:8000/v1", "backend.launch": false, "backend.model": "paid",
      "engine.model": "theirs/model", "chat.model": "paid-chat", "completion.maxTokens": 64 };
    const opts = toServerOptions(reader(user, folder));
    expect(opts.backend).toEqual({ endpoint: "http://mine:8000/v1" });
    expect(opts.engine).toEqual({ kind: "vllm" });
    expect(opts.chat).toEqual({});
    expect(opts.completion).toEqual({ maxTokens: 64 }); // not user-only: the folder's value
  });

  it("can add to the privacy lists, never empty them", () => {
    const opts = toServerOptions(reader(
      { "chat.excludeGlobs": ["*.secret.txt"], "completion.disabledLanguages": ["markdown"] },
      { "chat.excludeGlobs": [], "completion.disabledLanguages": ["rust"] },
    ));
    expect(opts.chat.excludeGlobs).toEqual(["*.secret.txt"]);
    expect(opts.completion.disabledLanguages).toEqual(["markdown", "rust"]);
  });
});

describe("the user's own settings for user-only keys", () => {
  it("all reach the server, which drops them from the workspace/configuration answer", () => {
    const user = { "completion.telemetry": false, "backend.headers": { "X-Gateway-Token": "t" },
      "log.file": "/home/me/vllm.log", "engine.command": ["/opt/engine"], "engine.keepAlive": true };
    const folder = { "completion.telemetry": true, "log.file": "/tmp/theirs.log", "engine.command": ["sh"] };
    const opts = toServerOptions(reader(user, folder));
    expect(opts.completion).toEqual({ telemetry: false });
    expect(opts.backend).toEqual({ headers: { "X-Gateway-Token": "t" } });
    expect(opts.log).toEqual({ file: "/home/me/vllm.log" });
    expect(opts.engine).toEqual({ command: ["/opt/engine"], keepAlive: true });
  });
});
