// Prometheus metrics of one node (prom-client), served at GET /metrics. Counters are bound to
// their label values once, so the hot paths only add to a number.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Queue } from "bullmq";

/** How long a scrape waits for the queues' job counts. */
const QUEUE_COUNTS_WAIT_MS = 1000;
const HEAP_SPACE_METRICS = ["total", "used", "available"].map((m) => `nodejs_heap_space_size_${m}_bytes`);
/** Bun answers what these read (process._getActiveHandles() and kin) with nothing: they would always say 0. */
const ALWAYS_ZERO_METRICS = ["handles", "requests", "resources"].flatMap((m) => [`nodejs_active_${m}`, `nodejs_active_${m}_total`]);

export class Metrics {
  readonly registry = new Registry();
  readonly logins = new Counter({ name: "im_logins_total", help: "Successful logins", registers: [this.registry] });
  readonly framesIn = new Counter({ name: "im_frames_in_total", help: "Frames received, by code", labelNames: ["code"], registers: [this.registry] });
  readonly framesOut = new Counter({ name: "im_frames_out_total", help: "Frames sent, by code (room fan-out counts each recipient)", labelNames: ["code"], registers: [this.registry] });
  readonly deliveries = new Counter({ name: "im_deliveries_total", help: "Messages written to recipients, by kind", labelNames: ["kind"], registers: [this.registry] });
  readonly deliveriesNotHeld = new Counter({
    name: "im_deliveries_not_held_total",
    help: "Reliable deliveries dropped for a client that does not read its login replay (past 8 MiB held): their ACK check resends or keeps them",
    registers: [this.registry],
  });
  readonly slowClientsClosed = new Counter({
    name: "im_slow_clients_closed_total",
    help: "Connections closed because their client did not read what it was sent (more unsent than the transport allows: TCP 8 MiB, WebSocket 4 MiB), by transport. WebSocket: those found at a frame sent to the connection; Bun's own close of a room subscriber over the bound looks like any close",
    labelNames: ["transport"],
    registers: [this.registry],
  });
  readonly retries = new Counter({ name: "im_delivery_retries_total", help: "Reliable deliveries resent after an ACK timeout", registers: [this.registry] });
  readonly keptOffline = new Counter({ name: "im_kept_offline_total", help: "Reliable deliveries left kept for the next login (offline or attempts used up)", registers: [this.registry] });
  readonly refused = new Counter({ name: "im_refused_total", help: "Refusals by reason: ERROR frames sent and WebSocket upgrades refused", labelNames: ["reason"], registers: [this.registry] });
  readonly backendErrors = new Counter({
    name: "im_backend_errors_total",
    help: "Redis errors (connection errors and failed commands) and MySQL errors (failed queries), by backend",
    labelNames: ["backend"],
    registers: [this.registry],
  });
  readonly redisErrors = this.backendErrors.labels("redis");
  readonly mysqlErrors = this.backendErrors.labels("mysql");
  readonly jobSeconds = new Histogram({
    name: "im_job_duration_seconds",
    help: "Time from a job's creation to its completion, by queue",
    labelNames: ["queue"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  /** A histogram, not the last sample: a stall of a few hundred ms between two scrapes still shows. */
  readonly eventLoopLag = new Histogram({
    name: "im_event_loop_lag_seconds",
    help: "How late a 100 ms timer fired (every firing is a sample)",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  private readonly framesInThisTick = new CountsPerTick(this.framesIn);
  private readonly framesOutThisTick = new CountsPerTick(this.framesOut);
  private lagTimer: ReturnType<typeof setInterval> | null = null;

  constructor(sources: { connections(): Record<"tcp" | "ws", number>; queues(): Queue[] }) {
    collectDefaultMetrics({ register: this.registry });
    // Bun answers v8.getHeapSpaceStatistics() by walking the whole heap (about 160 ms at a million
    // objects, this machine): every scrape would stall the event loop for it. The heap totals
    // (process.memoryUsage) stay.
    for (const name of [...HEAP_SPACE_METRICS, ...ALWAYS_ZERO_METRICS]) this.registry.removeSingleMetric(name);
    // both series from the start, so that a rate or an alert sees 0 rather than nothing
    this.redisErrors.inc(0);
    this.mysqlErrors.inc(0);
    new Gauge({
      name: "im_connections",
      help: "Open client connections, by transport",
      labelNames: ["transport"],
      registers: [this.registry],
      collect() {
        const c = sources.connections();
        this.set({ transport: "tcp" }, c.tcp);
        this.set({ transport: "ws" }, c.ws);
      },
    });
    new Gauge({
      name: "im_queue_jobs",
      help: "Jobs in each queue, by state. The queues are the cluster's: every node reports the same counts (aggregate with max, not sum)",
      labelNames: ["queue", "state"],
      registers: [this.registry],
      async collect() {
        // BullMQ's connection waits for Redis without end: a scrape during an outage must still
        // answer (with the other series, the Redis error count among them), so it asks at most
        // QUEUE_COUNTS_WAIT_MS and otherwise keeps the last counts
        const counts = await Promise.race([
          Promise.all(sources.queues().map(async (q) => ({ name: q.name, counts: await q.getJobCounts("waiting", "active", "delayed", "failed") }))),
          Bun.sleep(QUEUE_COUNTS_WAIT_MS).then(() => null),
        ]);
        for (const q of counts ?? []) {
          for (const [state, n] of Object.entries(q.counts)) this.set({ queue: q.name, state }, n);
        }
      },
    });
  }

  frameIn(code: number): void {
    this.framesInThisTick.add(code, 1);
  }

  frameOut(code: number, n = 1): void {
    this.framesOutThisTick.add(code, n);
  }

  /** Sample event-loop lag: how late a periodic timer fires. */
  startLagProbe(): void {
    let expected = performance.now() + 100;
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      this.eventLoopLag.observe(Math.max(0, now - expected) / 1000);
      expected = now + 100;
    }, 100);
    this.lagTimer.unref?.();
  }

  stop(): void {
    if (this.lagTimer) clearInterval(this.lagTimer);
  }
}

/** The key of every code outside the protocol's (1001–1006). */
const OTHER = 0;

/**
 * Frame counts by code, added to their counter once per tick: a room fan-out writes a frame to every
 * viewer in one tick, and a counter update per frame was a visible part of its cost (prom-client
 * hashes the labels at each update).
 */
class CountsPerTick {
  private readonly counts = new Map<number, number>();
  private readonly byCode = new Map<number, Counter.Internal>();

  constructor(private readonly counter: Counter) {}

  add(code: number, n: number): void {
    // unknown codes from clients count as one (OTHER), so a client cannot grow the label set, nor these maps
    const key = code >= 1001 && code <= 1006 ? code : OTHER;
    if (this.counts.size === 0) setImmediate(this.report);
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }

  private readonly report = (): void => {
    for (const [code, n] of this.counts) this.child(code).inc(n);
    this.counts.clear();
  };

  private child(code: number): Counter.Internal {
    let c = this.byCode.get(code);
    if (!c) {
      c = this.counter.labels(code === OTHER ? "other" : String(code));
      this.byCode.set(code, c);
    }
    return c;
  }
}
