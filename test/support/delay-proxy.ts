// A TCP proxy that holds every chunk `delayMs` in each direction (a node in a far region: one round
// trip to Redis or MySQL costs 2 × delayMs), and notes the commands that pass through it: Redis
// commands (RESP arrays) or MySQL commands (a client packet that starts a command). Not a stand-in
// for either: every byte goes to the real server, in order. Tests count commands with it, never
// time them: on Redis each command also notes how many replies its connection had been handed
// when it came, so a test can tell a command sent with an earlier one (the same round trip) from
// one sent only once the earlier one's reply was back (a round trip more).
import type net from "node:net";
import { TcpProxy, type Pair, type Target } from "./tcp-proxy";

export type Wire = "redis" | "mysql";

export interface SeenCommand {
  /** performance.now() when the command reached the proxy (before its delay). */
  at: number;
  /** Which client connection (numbered from 1 in accept order). */
  conn: number;
  /** Redis: the command name in upper case, then its arguments; MySQL: COM_* name, then the SQL, if any. */
  args: string[];
  /** Its place among its connection's commands (0 first). */
  index: number;
  /**
   * Redis: how many replies the proxy had handed this connection's client when the command came
   * (Redis answers a connection's commands in order: the command was sent before the reply to
   * command number `replied` of the connection). MySQL: 0.
   */
  replied: number;
}

/** True when `later` was sent only once `earlier`'s reply was back (both of one Redis connection). */
export function sentAfterReplyTo(later: SeenCommand, earlier: SeenCommand): boolean {
  if (later.conn !== earlier.conn) throw new Error("commands of two connections cannot be compared");
  return later.replied > earlier.index;
}

/** The longest argument kept in a SeenCommand (a message's JSON is cut). */
const ARG_MAX = 200;

export class DelayProxy extends TcpProxy {
  readonly commands: SeenCommand[] = [];
  /** Connections whose replies are held (holdReplies). */
  private readonly held = new Set<number>();
  private readonly resumers = new Map<number, () => void>();
  private conns = 0;

  private constructor(
    private readonly wire: Wire,
    public delayMs: number,
  ) {
    super();
  }

  static start(target: Target, wire: Wire, delayMs: number): Promise<DelayProxy> {
    return new DelayProxy(wire, delayMs).listen(target);
  }

  /**
   * The connection (its number) that named itself `name` (CLIENT SETNAME, as ioredis does with its
   * connectionName), or undefined.
   */
  connectionNamed(name: string): number | undefined {
    return this.commands.find((c) => c.args[0] === "CLIENT" && c.args[1]?.toUpperCase() === "SETNAME" && c.args[2] === name)?.conn;
  }

  /** Replies to connection `conn` stop reaching it (they wait in the proxy, in order) until releaseReplies. */
  holdReplies(conn: number): void {
    this.held.add(conn);
  }

  releaseReplies(conn: number): void {
    this.held.delete(conn);
    this.resumers.get(conn)?.();
  }

  /** The commands seen since `from` (an index into `commands`) that `match` keeps. */
  since(from: number, match: (c: SeenCommand) => boolean = () => true): SeenCommand[] {
    return this.commands.slice(from).filter(match);
  }

  protected accept({ client, upstream }: Pair): void {
    const conn = ++this.conns;
    const parse = this.wire === "redis" ? respCommands() : mysqlCommands();
    const countReplies = this.wire === "redis" ? respReplies() : () => 0;
    let index = 0;
    let replied = 0;
    const toServer = delayed(upstream, () => this.delayMs);
    const toClient = delayed(client, () => this.delayMs, (chunk) => (replied += countReplies(chunk)), () => this.held.has(conn));
    this.resumers.set(conn, toClient.resume);
    client.on("data", (chunk: Buffer) => {
      const at = performance.now();
      for (const args of parse(chunk)) this.commands.push({ at, conn, args, index: index++, replied });
      toServer(chunk);
    });
    upstream.on("data", (chunk: Buffer) => toClient(chunk));
  }
}

/**
 * Writes each chunk to `to` `delay()` ms after it was given, in order; `written` sees each one as it
 * goes. While `held()`, nothing goes: call resume() once it is not.
 */
function delayed(
  to: net.Socket,
  delay: () => number,
  written: (chunk: Buffer) => void = () => {},
  held: () => boolean = () => false,
): ((chunk: Buffer) => void) & { resume: () => void } {
  const queue: Array<{ due: number; chunk: Buffer }> = [];
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const pump = () => {
    timer = null;
    if (held()) return;
    const now = performance.now();
    while (queue.length > 0 && queue[0].due <= now + 0.5) {
      const { chunk } = queue.shift()!;
      written(chunk);
      if (!to.destroyed) to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(pump, queue[0].due - now);
  };
  const send = (chunk: Buffer) => {
    // never before the chunk ahead of it, should the delay shrink meanwhile
    last = Math.max(last, performance.now() + delay());
    queue.push({ due: last, chunk });
    if (timer === null && !held()) timer = setTimeout(pump, last - performance.now());
  };
  return Object.assign(send, {
    resume: () => {
      if (timer === null && queue.length > 0) timer = setTimeout(pump, Math.max(0, queue[0].due - performance.now()));
    },
  });
}

/** A parser of a client's RESP stream: each call takes the next chunk and returns the commands it completed. */
function respCommands(): (chunk: Buffer) => string[][] {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const out: string[][] = [];
    for (;;) {
      const parsed = readArray(buf);
      if (parsed === null) break;
      out.push(parsed.args);
      buf = buf.subarray(parsed.end);
    }
    return out;
  };
}

function readArray(buf: Buffer): { args: string[]; end: number } | null {
  if (buf.length === 0 || buf[0] !== 0x2a /* * */) {
    // an inline command (never sent by ioredis): up to the line's end
    const eol = buf.indexOf("\r\n");
    return eol < 0 ? null : { args: buf.subarray(0, eol).toString().split(" "), end: eol + 2 };
  }
  let eol = buf.indexOf("\r\n");
  if (eol < 0) return null;
  const n = Number(buf.subarray(1, eol).toString());
  let pos = eol + 2;
  const args: string[] = [];
  for (let i = 0; i < n; i++) {
    eol = buf.indexOf("\r\n", pos);
    if (eol < 0) return null;
    const len = Number(buf.subarray(pos + 1, eol).toString());
    const start = eol + 2;
    if (buf.length < start + len + 2) return null;
    const arg = buf.subarray(start, start + Math.min(len, ARG_MAX)).toString();
    args.push(i === 0 ? arg.toUpperCase() : arg);
    pos = start + len + 2;
  }
  return { args, end: pos };
}

/** A counter of a server's RESP2 replies: each call takes the next chunk and returns how many replies it completed. */
function respReplies(): (chunk: Buffer) => number {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let n = 0;
    for (let end = skipValue(buf, 0); end !== null; end = skipValue(buf, 0)) {
      buf = buf.subarray(end);
      n++;
    }
    return n;
  };
}

/** Where the RESP value (RESP2, or RESP3 should a client ask for it) at `pos` ends, or null if `buf` does not hold all of it yet. */
function skipValue(buf: Buffer, pos: number): number | null {
  if (pos >= buf.length) return null;
  const eol = buf.indexOf("\r\n", pos);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  // a line: simple string, error, integer, null, boolean, double, big number
  if ("+-:_#,(".includes(type)) return eol + 2;
  const n = Number(buf.subarray(pos + 1, eol).toString());
  if ("$!=".includes(type)) {
    // n bytes (bulk string, blob error, verbatim string), or null (-1)
    if (n < 0) return eol + 2;
    return buf.length < eol + 2 + n + 2 ? null : eol + 2 + n + 2;
  }
  // aggregates of n values (array, set, push), or of n pairs (map, attribute: its value follows it)
  const values = "*~>".includes(type) ? n : "%|".includes(type) ? 2 * n : Number.NaN;
  if (Number.isNaN(values)) throw new Error(`not a RESP reply: ${type}`);
  let at: number | null = eol + 2;
  for (let i = 0; i < values && at !== null; i++) at = skipValue(buf, at);
  return type === "|" && at !== null ? skipValue(buf, at) : at;
}

const MYSQL_COMMANDS: Record<number, string> = { 0x01: "COM_QUIT", 0x03: "COM_QUERY", 0x0e: "COM_PING", 0x16: "COM_STMT_PREPARE", 0x17: "COM_STMT_EXECUTE", 0x19: "COM_STMT_CLOSE" };

/**
 * A parser of a client's MySQL stream: a packet with sequence id 0 starts a command (the handshake
 * response and what follows within a command have higher ones).
 */
function mysqlCommands(): (chunk: Buffer) => string[][] {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const out: string[][] = [];
    while (buf.length >= 4) {
      const len = buf[0] | (buf[1] << 8) | (buf[2] << 16);
      if (buf.length < 4 + len) break;
      const seq = buf[3];
      if (seq === 0 && len > 0) {
        const code = buf[4];
        const name = MYSQL_COMMANDS[code] ?? `COM_${code.toString(16)}`;
        const text = code === 0x03 || code === 0x16 ? [buf.subarray(5, 5 + Math.min(len - 1, ARG_MAX)).toString()] : [];
        out.push([name, ...text]);
      }
      buf = buf.subarray(4 + len);
    }
    return out;
  };
}
