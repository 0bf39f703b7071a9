// Redis' cost of settling ACKs (PendingAcks.settle: one script call per tick's batch of ACKs), read
// from Redis' own INFO commandstats (evalsha calls and µs), so the figure is Redis CPU, not a
// timing of the round trip. `--src` points at another checkout's src/ to compare two versions of
// the script on the same Redis, e.g. before and after redis/answered-once.ts:
//   git worktree add /tmp/ab-old <rev> && bun bench/ack-settle.ts --src /tmp/ab-old/src
//   bun bench/ack-settle.ts
// Needs nothing else to run evalsha on that Redis meanwhile (the stats are Redis-wide).
import Redis from "ioredis";
import { resolve } from "node:path";
import { parseArgs } from "./lib/args";
import { printTable } from "./lib/report";
import { createLogger } from "../src/log";

const args = parseArgs({ src: resolve(import.meta.dir, "../src"), acks: 50_000, batch: [1, 20], redis: "redis://127.0.0.1:6379" });

const { PendingAcks } = (await import(`${args.src}/messaging/pending-acks.ts`)) as typeof import("../src/messaging/pending-acks");
const { createKeys } = (await import(`${args.src}/redis/keys.ts`)) as typeof import("../src/redis/keys");
const { createQueues } = (await import(`${args.src}/queues/queues.ts`)) as typeof import("../src/queues/queues");

const prefix = `bench-settle-${Date.now().toString(36)}`;
const keys = createKeys(prefix);
const redis = new Redis(args.redis, { enableAutoPipelining: true });
const queues = createQueues(redis, keys.bullPrefix(), createLogger("ack-settle", "warn"));
const pending = new PendingAcks(redis, keys, queues, 60_000);

async function evalshaStats(): Promise<{ calls: number; usec: number }> {
  const line = ((await redis.info("commandstats")) as string).split("\n").find((l) => l.startsWith("cmdstat_evalsha:")) ?? "";
  return { calls: Number(/calls=(\d+)/.exec(line)?.[1] ?? 0), usec: Number(/usec=(\d+)/.exec(line)?.[1] ?? 0) };
}

const rows = [];
try {
  for (const batch of args.batch) {
    const messages = Array.from({ length: args.acks }, (_, i) => ({ appId: 1, userId: 1 + (i % 1000), msgId: String(1_000_000 + i), bizCode: 5556, data: "{}", ts: 0, senderId: 0 }));
    for (let i = 0; i < messages.length; i += 1000) await pending.record(messages.slice(i, i + 1000), { attempt: 1, kept: false });
    const before = await evalshaStats();
    const cpu = process.cpuUsage();
    for (let i = 0; i < messages.length; i += batch) {
      await Promise.all(messages.slice(i, i + batch).map((m) => pending.settle(m.appId, m.userId, m.msgId)));
    }
    const used = process.cpuUsage(cpu);
    const after = await evalshaStats();
    const calls = after.calls - before.calls;
    const usec = after.usec - before.usec;
    rows.push({
      "ACKs per call": batch,
      calls,
      "Redis µs per call": (usec / calls).toFixed(2),
      "Redis µs per ACK": (usec / args.acks).toFixed(2),
      "client µs per ACK": ((used.user + used.system) / args.acks).toFixed(2),
    });
  }
  console.log(`src: ${args.src}, ${args.acks} ACKs per row`);
  printTable(rows);
} finally {
  for await (const stale of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
    if (stale.length > 0) await redis.unlink(...stale);
  }
  await queues.close();
  redis.disconnect();
}
