// Coalesce work to at most once per animation frame (the chat panel renders per frame, not per
// token). The scheduler is injected so the rule is unit-tested (test/unit/frame.test.ts).
export type Scheduler = (callback: () => void) => unknown;

export class FrameBatcher {
  private pending: (() => void) | undefined;
  private scheduled = false;

  constructor(private readonly schedule: Scheduler) {}

  /** Run ``work`` on the next frame; further requests before then replace it (one run). */
  request(work: () => void): void {
    this.pending = work;
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      const run = this.pending;
      this.pending = undefined;
      run?.();
    });
  }

  /** Drop the pending run (the final render happens now instead). */
  cancel(): void {
    this.pending = undefined;
  }
}
