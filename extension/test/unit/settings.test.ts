import { describe, expect, it } from "vitest";
import { isSwitchedOff, toServerOptions } from "../../src/settings";

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
    // bounded by the user's value: the folder's comes through workspace/configuration, not as the user's
    expect(opts.completion).toEqual({});
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

// What a repository's .vscode/settings.json may do through initializationOptions, which the server
// takes as the user's own (docs/security.md, "Who decides what").
describe("a folder's settings through initializationOptions", () => {
  it("cannot raise a bounded tunable: the folder's maxTokens, debounce and next-edit sizes are not sent as the user's", () => {
    const folder = { "completion.maxTokens": 4096, "chat.maxTokens": 32768, "completion.debounceMs": 0,
      "nextEdit.maxTokens": 4096, "nextEdit.timeoutMs": 30000, "backend.contextLength": 1_000_000 };
    const opts = toServerOptions(reader({ "completion.maxTokens": 32, "nextEdit.maxTokens": 64 }, folder));
    expect(opts.completion).toEqual({ maxTokens: 32 });
    expect(opts.chat).toEqual({});
    expect(opts.nextEdit).toEqual({ maxTokens: 64 });
    expect(opts.backend).toEqual({});
  });

  it("cannot switch next edits or prefetch back on: the user's off is sent", () => {
    const opts = toServerOptions(reader({ "nextEdit.enabled": false, "completion.prefetch": false },
      { "nextEdit.enabled": true, "completion.prefetch": true }));
    expect(opts.nextEdit).toEqual({ enabled: false });
    expect(opts.completion).toEqual({ prefetch: false });
  });

  it("next edits are off when the user or the folder switched them off", () => {
    expect(isSwitchedOff(reader({ "nextEdit.enabled": false }, { "nextEdit.enabled": true }), "nextEdit.enabled")).toBe(true);
    expect(isSwitchedOff(reader({}, { "nextEdit.enabled": false }), "nextEdit.enabled")).toBe(true);
    expect(isSwitchedOff(reader({ "nextEdit.enabled": true }, {}), "nextEdit.enabled")).toBe(false);
  });

  it("cannot flood a privacy list: a folder adds at most 256 short items, globs of at most 16 stars", () => {
    const huge = Array.from({ length: 10_000 }, (_, i) => `${"*a".repeat(150)}${i}`);
    const opts = toServerOptions(reader({ "chat.excludeGlobs": ["mine/**"] },
      { "chat.excludeGlobs": [...huge, "*.pem", ...Array.from({ length: 300 }, (_, i) => `g${i}`)] }));
    expect(opts.chat.excludeGlobs).toEqual(["mine/**"]); // the first 256 items were all too long
    const fine = toServerOptions(reader({}, { "chat.excludeGlobs": ["*.pem", "x".repeat(257), "*".repeat(17), 7, "ok/**"] }));
    expect(fine.chat.excludeGlobs).toEqual(["*.pem", "ok/**"]);
  });

  it("the user's own privacy list is kept whole", () => {
    const mine = Array.from({ length: 300 }, (_, i) => `mine${i}/**`);
    expect(toServerOptions(reader({ "chat.excludeGlobs": mine }, {})).chat.excludeGlobs).toHaveLength(300);
  });

  it("cannot reach a user-only key of a new section through a folder or language scope", () => {
    const scoped = {
      get: <T>(key: string) => ({ "nextEdit.family": "theirs", "backend.endpoint": "http://theirs/v1" } as Record<string, unknown>)[key] as T,
      inspect: <T>(key: string) => (key === "backend.endpoint"
        ? { workspaceFolderValue: "http://theirs/v1" as T, workspaceLanguageValue: "http://theirs/v1" as T } : {}),
    };
    const opts = toServerOptions(scoped);
    expect(opts.backend).toEqual({});
    expect(Object.values(opts).flatMap((s) => Object.values(s))).not.toContain("http://theirs/v1");
  });
});
