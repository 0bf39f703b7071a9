// When an ImClient tries again after a lost connection: counts attempts in a row, waits the backoff
// delay, and says when to give up.
import { backoffDelay, type BackoffSettings } from "./backoff";

export class ReconnectSchedule {
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** `backoff` null: never reconnect. */
  constructor(private readonly backoff: BackoffSettings | null) {}

  /**
   * Run `attempt` after the next backoff delay and return {attempt, delayMs}; or return null, and
   * run nothing, when reconnecting is off or maxAttempts attempts in a row have failed.
   */
  schedule(attempt: () => void): { attempt: number; delayMs: number } | null {
    const b = this.backoff;
    if (!b || this.attempts >= b.maxAttempts) return null;
    const delayMs = backoffDelay(++this.attempts, b);
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = null;
      attempt();
    }, delayMs);
    return { attempt: this.attempts, delayMs };
  }

  /** A login succeeded: the next loss starts from the first delay again. */
  reset(): void {
    this.attempts = 0;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
