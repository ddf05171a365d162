// The model picker's items and the restart prompts (models.ts).
import { describe, expect, it } from "vitest";
import { changedKeys, modelParams, pickItems, RESTART_KEYS, restartMessage, userValues } from "../../src/models";

const reader = (user: Record<string, unknown>, folder: Record<string, unknown> = {}) => ({
  get: <T>(key: string) => (key in folder ? folder[key] : user[key]) as T | undefined,
  inspect: <T>(key: string) => ({ globalValue: user[key] as T | undefined, workspaceValue: folder[key] as T | undefined }),
});

describe("pickItems", () => {
  const answer = {
    served: [{ id: "coder-a", maxModelLen: 4096 }, { id: "coder-b", maxModelLen: null }],
    current: "coder-b",
    alternatives: [{ model: "Qwen/Qwen2.5-Coder-7B-Instruct", why: "7B in bf16: fits", needsRestart: true }],
  };

  it("lists served models with the current one marked, then the plan's alternatives", () => {
    const items = pickItems(answer, undefined);
    expect(items.map((i) => i.label)).toEqual([
      "Served by the endpoint", "coder-a", "$(check) coder-b",
      "Other models for this machine (restarts the engine)", "Qwen/Qwen2.5-Coder-7B-Instruct",
    ]);
    expect(items[1]).toMatchObject({ description: "4,096 tokens", action: { kind: "served", model: "coder-a" } });
    expect(items[2]).toMatchObject({ description: "in use", action: { kind: "served", model: "coder-b" } });
    expect(items[4]).toMatchObject({ detail: "7B in bf16: fits", action: { kind: "alternative" } });
    expect(items.filter((i) => i.separator).every((i) => i.action.kind === "none")).toBe(true);
  });

  it("offers going back to the plan's own choice when engine.model is set", () => {
    const items = pickItems({ served: [], alternatives: [] , error: "connection refused" }, "Qwen/X");
    expect(items.map((i) => i.action.kind)).toEqual(["none", "none", "none", "automatic"]);
    expect(items[1].detail).toBe("connection refused");
  });

  it("takes only model ids from a malformed answer: no number, no 10,000-character id cut short", () => {
    const items = pickItems({ served: [{ id: 5 }, { id: "x".repeat(10_000) }, null as never], alternatives: [{ model: {} }] }, undefined);
    expect(items.map((i) => i.label)).toEqual(["Served by the endpoint", "$(warning) No served models"]);
  });
});

describe("restart prompts", () => {
  it("engine, launch, server command and the other start-only settings need a restart; the models do not", () => {
    for (const key of ["engine.model", "engine.kind", "backend.launch", "serverCommand", "pythonPath", "backend.endpoint"]) {
      expect(RESTART_KEYS).toContain(key);
    }
    for (const key of ["backend.model", "chat.model", "backend.apiKey", "completion.debounceMs"]) {
      expect(RESTART_KEYS).not.toContain(key);
    }
  });

  it("a change is what the user's own value did; a folder's edit to a user-only key asks for nothing", () => {
    const keys = ["engine.model", "backend.model"];
    const before = userValues(reader({ "engine.model": null }), keys);
    expect(changedKeys(before, userValues(reader({}, { "engine.model": "evil/model" }), keys))).toEqual([]);
    expect(changedKeys(before, userValues(reader({ "engine.model": "Qwen/X" }), keys))).toEqual(["engine.model"]);
  });

  it("says what restarts", () => {
    expect(restartMessage(["engine.model"])).toBe(
      "vLLM Companion: changing engine.model takes effect after restarting the server and engine.");
    expect(restartMessage(["serverCommand"])).toContain("after restarting the server.");
    expect(restartMessage(["engine.a", "engine.b", "engine.c", "engine.d", "engine.e"])).toContain("and 2 more");
  });

  it("didChangeModel carries the user's own values, never a folder's", () => {
    expect(modelParams(reader({ "backend.model": "coder-b" }, { "chat.model": "evil" }))).toEqual({
      backend: { model: "coder-b" }, chat: { model: null },
    });
  });
});
