// A redis-server of a test's own, on a free port, that the test may stop and start again: Redis
// restarts with and without its data are things a shared Redis must never be put through. It keeps
// nothing on disk (as production's Redis here), so a restart starts empty.
import type { Subprocess } from "bun";
import Redis from "ioredis";
import { waitFor } from "./wait";

const START_TIMEOUT_MS = 10_000;

export class PrivateRedis {
  private proc: Subprocess | null = null;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Start one on a free port; resolves once it answers PING. */
  static async start(): Promise<PrivateRedis> {
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const redis = new PrivateRedis(port);
    await redis.up();
    return redis;
  }

  /** Kill it (SIGKILL: like SHUTDOWN NOSAVE, all its data is gone) and wait until it has exited. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc) return;
    proc.kill("SIGKILL");
    await proc.exited;
  }

  /** Whether it runs (up() was the last call, not kill()). */
  get running(): boolean {
    return this.proc !== null;
  }

  /** Start it again on the same port, empty; resolves once it answers PING. */
  async up(): Promise<void> {
    if (this.proc) throw new Error("redis-server is running already");
    this.proc = Bun.spawn(["redis-server", "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "ignore" });
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // refused while the server starts: the wait below tries again
    client.on("error", () => {});
    try {
      await waitFor(async () => (await client.connect().then(() => client.ping()).catch(() => (client.disconnect(), null))) === "PONG", START_TIMEOUT_MS, `redis-server on port ${this.port} answering PING`);
    } finally {
      client.disconnect();
    }
  }
}
