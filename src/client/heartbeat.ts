// The keep-alive of one connection: a HEARTBEAT every interval, and a verdict on a silent server.

/**
 * Every `intervalMs`: if nothing came from the server for 2 intervals (it answers every heartbeat),
 * calls onSilent once and stops; otherwise calls beat(). stop() is idempotent.
 */
export class Heartbeat {
  private lastInboundAt = Date.now();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(intervalMs: number, beat: () => void, onSilent: (silentMs: number) => void) {
    this.timer = setInterval(() => {
      const silentMs = Date.now() - this.lastInboundAt;
      if (silentMs > 2 * intervalMs) {
        this.stop();
        onSilent(silentMs);
      } else beat();
    }, intervalMs);
  }

  /** Something arrived from the server. */
  heard(): void {
    this.lastInboundAt = Date.now();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
