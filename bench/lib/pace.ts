// Open-loop pacing: the offered rate does not slow down when the server does (a closed loop would
// hide a server falling behind). Each tick sends what is due by the clock; if the generator itself
// stalls, the next tick catches up in a burst and the sent count still tells what was offered.

export interface Paced {
  sent: number;
  wallMs: number;
  /** The longest gap between ticks: a large one means the generator was too busy to keep time. */
  maxTickGapMs: number;
}

export async function paced(ratePerS: number, durationMs: number, send: (i: number) => void): Promise<Paced> {
  const total = Math.floor((ratePerS * durationMs) / 1000);
  const t0 = performance.now();
  let sent = 0;
  let last = t0;
  let maxTickGapMs = 0;
  for (;;) {
    const now = performance.now();
    maxTickGapMs = Math.max(maxTickGapMs, now - last);
    last = now;
    const elapsed = now - t0;
    const due = Math.min(total, Math.floor((ratePerS * elapsed) / 1000));
    while (sent < due) send(sent++);
    if (elapsed >= durationMs || sent >= total) break;
    await Bun.sleep(1);
  }
  return { sent, wallMs: performance.now() - t0, maxTickGapMs };
}
