// Snooze (issue 23, item 6): no automatic suggestions for 5 / 15 / 60 minutes, then they come
// back by themselves. The state lives here, in memory only: a temporary snooze never writes the
// user's settings (completion.enabled is the lasting pause). While snoozed the inline provider's
// middleware drops automatic triggers before they reach the server; invoked ones (Alt+\) still
// go. Pure (timers only): tested with fake timers in test/unit/snooze.test.ts.

export const SNOOZE_MINUTES = [5, 15, 60] as const;

export class Snooze {
  private until: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** onChange: the snooze started or ended (the status bar redraws). */
  constructor(private readonly onChange: () => void) {}

  /** Snooze for `minutes` from now; a new snooze replaces the running one. */
  start(minutes: number): void {
    if (!(minutes > 0)) throw new RangeError(`snooze needs a positive number of minutes, not ${minutes}`);
    this.clear();
    const ms = minutes * 60_000;
    this.until = Date.now() + ms;
    this.timer = setTimeout(() => this.resume(), ms);
    this.onChange();
  }

  /** End the snooze now (the "Resume suggestions" entry, or its timer). */
  resume(): void {
    const was = this.until !== undefined;
    this.clear();
    if (was) this.onChange();
  }

  /** Snoozed now. The clock decides, not only the timer: a laptop that slept past the end of the
   * snooze is awake, even before the late timer fires. */
  active(): boolean {
    return this.until !== undefined && Date.now() < this.until;
  }

  /** When the snooze ends (ms since the epoch), or undefined when not snoozed. */
  endsAt(): number | undefined {
    return this.active() ? this.until : undefined;
  }

  dispose(): void {
    this.clear();
  }

  private clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.until = undefined;
  }
}

/** "snoozed until 14:05" (local time, 24-hour clock). */
export function snoozeLabel(endsAt: number): string {
  const at = new Date(endsAt);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `snoozed until ${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** Whether the inline provider should ask the server: automatic triggers wait out a snooze,
 * invoked ones (Alt+\, "Suggest Here") never do. `automatic`: the trigger kind is Automatic. */
export function shouldAsk(snooze: Pick<Snooze, "active"> | undefined, automatic: boolean): boolean {
  return !(automatic && snooze?.active());
}
