// Reconnect delays: exponential, capped, jittered.

export interface BackoffSettings {
  /** Delay ceiling of the first attempt. */
  initialMs: number;
  /** No delay is longer than this. */
  maxMs: number;
  /** Attempts in a row before the client gives up (Infinity: never). */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { initialMs: 500, maxMs: 30_000, maxAttempts: Infinity };

/**
 * The delay before reconnect attempt `attempt` (1-based): between half and all of
 * min(maxMs, initialMs * 2^(attempt-1)). The random half spreads out the clients of a node that went
 * down, so they do not all come back in the same instant.
 */
export function backoffDelay(attempt: number, s: BackoffSettings, random: () => number = Math.random): number {
  const ceiling = Math.min(s.maxMs, s.initialMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
