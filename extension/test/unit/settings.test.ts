import { describe, expect, it } from "vitest";
import { serverCommand, toServerOptions } from "../../src/settings";

const reader = (values: Record<string, unknown>) => ({ get: <T>(key: string) => values[key] as T | undefined });

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
    });
  });
});

describe("the API key", () => {
  it("comes from secret storage only, never from settings", () => {
    const opts = toServerOptions(reader({ "backend.apiKey": "settings-key" }), "secret-key");
    expect(opts.backend).toEqual({ apiKey: "secret-key" });
  });
});

describe("serverCommand", () => {
  it("prefers the explicit command, then a Python interpreter, then PATH", () => {
    expect(serverCommand(["/v/bin/vllm-companion", "lsp"], "/py", "/ext")).toEqual({ command: "/v/bin/vllm-companion", args: ["lsp"] });
    expect(serverCommand([], "/py", "/ext")).toEqual({ command: "/py", args: ["-m", "vllm_companion", "lsp"] });
    expect(serverCommand(undefined, "", "/ext")).toEqual({ command: "/ext", args: ["-m", "vllm_companion", "lsp"] });
    expect(serverCommand(undefined, undefined, undefined)).toEqual({ command: "vllm-companion", args: ["lsp"] });
  });
});
