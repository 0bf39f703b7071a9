// The one owner of Redis connections. Components get the client they need passed in; nobody
// creates a Redis client of their own.
import Redis from "ioredis";
import type { Logger } from "../log";
import { addTracingChannelHasSubscribers } from "./tracing-channel";

export interface RedisConnections {
  /** Commands and PUBLISH. */
  command: Redis;
  /** SUBSCRIBE only (a subscribed connection cannot run other commands). */
  subscriber: Redis;
  /**
   * BullMQ's connection: Queues use it; Workers duplicate it for their blocking commands, and
   * those duplicates report their errors as this module's own connections do.
   */
  bullmq: Redis;
  /** QUIT the three connections (what they sent is answered first). Never rejects. */
  close(): Promise<void>;
}

/** Called once for each Redis error: a connection error, or a command Redis (or ioredis) refused. */
export type RedisErrorListener = (err: unknown) => void;

type SendCommand = (command: { promise: Promise<unknown> }, ...rest: unknown[]) => Promise<unknown>;

/**
 * `nodeId` goes into each connection's name (CLIENT LIST shows `live-im:<nodeId>:<role>`), so that
 * an operator can tell whose connection is whose.
 */
export function connectRedis(url: string, log: Logger, opts: { nodeId?: string; onError?: RedisErrorListener } = {}): RedisConnections {
  const onError = opts.onError ?? (() => {});
  const owner = opts.nodeId === undefined ? "live-im" : `live-im:${opts.nodeId}`;
  addTracingChannelHasSubscribers();
  const watch = (client: Redis, name: string) => {
    client.on("error", (err) => {
      log.error({ err, redis: name }, "redis connection error");
      onError(err);
    });
    reportCommandErrors(client, onError);
    return client;
  };
  const make = (name: string, settings: { maxRetriesPerRequest: number | null; enableAutoPipelining?: boolean }) =>
    watch(new Redis(url, { connectionName: `${owner}:${name}`, ...settings }), name);
  // auto-pipelining: the commands of one tick leave in one write (not for BullMQ's connection: its
  // maintainers advise against it)
  const command = make("command", { maxRetriesPerRequest: 3, enableAutoPipelining: true });
  const subscriber = make("subscriber", { maxRetriesPerRequest: null });
  const bullmq = make("bullmq", { maxRetriesPerRequest: null });
  // each BullMQ worker makes its blocking connection with duplicate() (and closes it itself): those
  // report their errors like ours
  const duplicate = bullmq.duplicate.bind(bullmq);
  bullmq.duplicate = (override) => watch(duplicate(override), "bullmq-blocking");
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
 * Commands cut off by a deliberate close of the connection do not count either.
 */
function reportCommandErrors(client: Redis, onError: RedisErrorListener): void {
  const target = client as unknown as { sendCommand: SendCommand };
  const send = target.sendCommand.bind(client);
  const watched = new WeakSet<object>();
  target.sendCommand = (command, ...rest) => {
    if (client.status === "ready" && !watched.has(command)) {
      watched.add(command);
      command.promise.catch((err) => {
        // a command cut off by a deliberate close (quit, disconnect: a worker ending its blocking
        // wait) is not a Redis error
        if (client.status !== "end") onError(err);
      });
    }
    return send(command, ...rest);
  };
}
