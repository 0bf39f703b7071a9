// The one owner of Redis connections. Components get the client they need passed in; nobody
// creates a Redis client of their own.
import Redis from "ioredis";
import type { Logger } from "../log";

export interface RedisConnections {
  /** Commands and PUBLISH. */
  command: Redis;
  /** SUBSCRIBE only (a subscribed connection cannot run other commands). */
  subscriber: Redis;
  /** BullMQ's connection: Queues use it; Workers duplicate it for their blocking commands. */
  bullmq: Redis;
  close(): Promise<void>;
}

export function connectRedis(url: string, log: Logger): RedisConnections {
  const make = (name: string, opts: { maxRetriesPerRequest: number | null }) => {
    const client = new Redis(url, { connectionName: `live-im:${name}`, ...opts });
    client.on("error", (err) => log.error({ err, redis: name }, "redis connection error"));
    return client;
  };
  const command = make("command", { maxRetriesPerRequest: 3 });
  const subscriber = make("subscriber", { maxRetriesPerRequest: null });
  const bullmq = make("bullmq", { maxRetriesPerRequest: null });
  return {
    command,
    subscriber,
    bullmq,
    async close() {
      await Promise.allSettled([command.quit(), subscriber.quit(), bullmq.quit()]);
    },
  };
}
