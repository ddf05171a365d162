import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SNOOZE_MINUTES, Snooze, shouldAsk, snoozeLabel } from "../../src/snooze";

describe("snooze", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date(2025, 0, 6, 14, 0, 0));
  });
  afterEach(() => vi.useRealTimers());

  it("offers 5, 15 and 60 minutes", () => {
    expect([...SNOOZE_MINUTES]).toEqual([5, 15, 60]);
  });

  it("drops automatic triggers until it ends by itself; invoked ones always go", () => {
    const changes: boolean[] = [];
    const snooze = new Snooze(() => changes.push(snooze.active()));
    expect(shouldAsk(snooze, true)).toBe(true);
    snooze.start(15);
    expect(snooze.active()).toBe(true);
    expect(shouldAsk(snooze, true)).toBe(false);
    expect(shouldAsk(snooze, false)).toBe(true); // Alt+\
    expect(snoozeLabel(snooze.endsAt()!)).toBe("snoozed until 14:15");
    vi.advanceTimersByTime(15 * 60_000 - 1);
    expect(snooze.active()).toBe(true);
    vi.advanceTimersByTime(1);
    expect(snooze.active()).toBe(false);
    expect(snooze.endsAt()).toBeUndefined();
    expect(shouldAsk(snooze, true)).toBe(true);
    expect(changes).toEqual([true, false]); // the status bar redrew at start and at the end
  });

  it("resumes early, and a new snooze replaces the running one", () => {
    let changes = 0;
    const snooze = new Snooze(() => changes++);
    snooze.start(60);
    snooze.start(5);
    expect(snoozeLabel(snooze.endsAt()!)).toBe("snoozed until 14:05");
    vi.advanceTimersByTime(5 * 60_000);
    expect(snooze.active()).toBe(false);
    vi.advanceTimersByTime(60 * 60_000); // the replaced timer does not fire again
    expect(changes).toBe(3);
    snooze.start(15);
    snooze.resume();
    expect(snooze.active()).toBe(false);
    snooze.resume(); // not snoozed: nothing to redraw
    expect(changes).toBe(5);
  });

  it("ends on the clock even when the timer is late (the machine slept)", () => {
    const snooze = new Snooze(() => undefined);
    snooze.start(5);
    vi.setSystemTime(Date.now() + 6 * 60_000); // the clock moved, no timer ran
    expect(snooze.active()).toBe(false);
    expect(shouldAsk(snooze, true)).toBe(true);
  });

  it("refuses a snooze of no time", () => {
    const snooze = new Snooze(() => undefined);
    expect(() => snooze.start(0)).toThrow(RangeError);
    expect(() => snooze.start(Number.NaN)).toThrow(RangeError);
    expect(snooze.active()).toBe(false);
  });

  it("pads the clock", () => {
    expect(snoozeLabel(new Date(2025, 0, 6, 9, 5).getTime())).toBe("snoozed until 09:05");
  });
});
