// The one owner of Redis connections. Components get the client they need passed in; nobody
// creates a Redis client of their own.
import type { Writable } from "node:stream";
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
  const make = (name: string, settings: { maxRetriesPerRequest: number | null }) => watch(new Redis(url, { connectionName: `${owner}:${name}`, ...settings }), name);
  // the commands of one tick leave in one write (not on BullMQ's connection: its maintainers advise
  // against pipelining it)
  const command = writeOncePerTick(make("command", { maxRetriesPerRequest: 3 }));
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
 * Put the commands `client` sends in one tick into one socket write. ioredis writes each command to
 * its socket at once, a write call each; its own auto-pipelining puts a tick's commands in one
 * write too, but sends no batch while the one before is unanswered (ioredis serves one pipeline at
 * a time): on a node far from Redis every command issued meanwhile waited a whole round trip more
 * (a room LOGIN on a node 30 ms from Redis with 50 messages/s of other traffic: 429 ms against 243,
 * bench/far-node.ts). Here nothing waits for a reply, and the CPU per command is no higher (a GET
 * in ticks of 200: 3.0 µs against 3.7 auto-pipelined, 7.9 written one by one). Each new socket
 * (a reconnect makes one) is wrapped as ioredis reports it connected; what it writes before that
 * (its handshake) goes straight out, ahead of anything buffered. Chunks held for a socket that
 * closes before the tick ends are dropped, as a write to a closed socket is: their commands are
 * ioredis's to fail or send again, as for any command cut off by the close.
 */
function writeOncePerTick(client: Redis): Redis {
  client.on("connect", () => {
    const stream = (client as unknown as { stream: Writable }).stream;
    const write = stream.write.bind(stream) as (chunk: string | Buffer) => boolean;
    let pending: Array<string | Buffer> | null = null;
    const flush = () => {
      const chunks = pending!;
      pending = null;
      if (stream.destroyed) return;
      write(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : c))));
    };
    // ioredis writes commands as one string or Buffer each, without an encoding or a callback
    stream.write = ((chunk: string | Buffer) => {
      if (pending === null) {
        pending = [];
        setImmediate(flush);
      }
      pending.push(chunk);
      return true;
    }) as Writable["write"];
  });
  return client;
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
