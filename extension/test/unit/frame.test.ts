import { describe, expect, it } from "vitest";
import { FrameBatcher } from "../../src/frame";

describe("FrameBatcher", () => {
  it("runs many requests in one frame once, with the latest work", () => {
    const frames: Array<() => void> = [];
    const batcher = new FrameBatcher((cb) => frames.push(cb));
    const ran: number[] = [];
    for (let i = 0; i < 500; i++) batcher.request(() => ran.push(i));
    expect(frames).toHaveLength(1);
    frames[0]();
    expect(ran).toEqual([499]);
    batcher.request(() => ran.push(1000));
    expect(frames).toHaveLength(2);
  });

  it("cancel drops the pending run", () => {
    const frames: Array<() => void> = [];
    const batcher = new FrameBatcher((cb) => frames.push(cb));
    let ran = 0;
    batcher.request(() => ran++);
    batcher.cancel();
    frames[0]();
    expect(ran).toBe(0);
  });
});
