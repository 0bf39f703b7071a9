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

/** Called once for each Redis error: a connection error, or a command Redis (or ioredis) refused. */
export type RedisErrorListener = (err: unknown) => void;

type SendCommand = (command: { promise: Promise<unknown> }, ...rest: unknown[]) => Promise<unknown>;

export function connectRedis(url: string, log: Logger, onError: RedisErrorListener = () => {}): RedisConnections {
  const make = (name: string, opts: { maxRetriesPerRequest: number | null; enableAutoPipelining?: boolean }) => {
    const client = new Redis(url, { connectionName: `live-im:${name}`, ...opts });
    client.on("error", (err) => {
      log.error({ err, redis: name }, "redis connection error");
      onError(err);
    });
    reportCommandErrors(client, onError);
    return client;
  };
  // auto-pipelining: the commands of one tick leave in one write (not for BullMQ's connection: its
  // maintainers advise against it)
  const command = make("command", { maxRetriesPerRequest: 3, enableAutoPipelining: true });
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

/**
 * ioredis has no event for a failed command: every command (pipelined ones too) goes through
 * sendCommand, so watch each command's promise there, once, however often ioredis resends it.
 * The caller's own handling of the rejection is unchanged. Only commands sent on a ready
 * connection count: the connect handshake's own (CLIENT SETINFO, refused by older servers and
 * ignored by ioredis) are not ours, and commands queued while connecting pass here again once ready.
 */
function reportCommandErrors(client: Redis, onError: RedisErrorListener): void {
  const target = client as unknown as { sendCommand: SendCommand };
  const send = target.sendCommand.bind(client);
  const watched = new WeakSet<object>();
  target.sendCommand = (command, ...rest) => {
    if (client.status === "ready" && !watched.has(command)) {
      watched.add(command);
      command.promise.catch(onError);
    }
    return send(command, ...rest);
  };
}
