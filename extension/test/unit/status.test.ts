import { describe, expect, it } from "vitest";
import { renderStatus, shortModel } from "../../src/status";

describe("renderStatus", () => {
  it("shows the state, short model name and last latency", () => {
    const v = renderStatus({ state: "ready", model: "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", latencyMs: 212.4 }, false);
    expect(v.text).toBe("$(sparkle) Qwen2.5-Coder-7B-Instruct-AWQ 212 ms");
    expect(v.error).toBe(false);
  });
  it("shows loading, errors, pauses and loop counts", () => {
    expect(renderStatus({ state: "starting", message: "Loading weights 40%" }, false).tooltip).toContain("Loading weights 40%");
    const err = renderStatus({ state: "error", message: "the engine is not installed" }, false);
    expect(err.error).toBe(true);
    expect(err.text.startsWith("$(error)")).toBe(true);
    expect(renderStatus({ state: "ready", model: "m" }, true).text.startsWith("$(debug-pause)")).toBe(true);
    expect(renderStatus({ state: "ready", loopEvents: 3 }, false).tooltip).toContain("loops stopped: 3");
  });
  it("shortens long model names", () => {
    expect(shortModel("org/" + "x".repeat(40)).length).toBe(32);
  });
});
