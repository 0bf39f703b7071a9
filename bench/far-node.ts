// A node in a far region: node A reaches Redis and MySQL directly, node B through delaying proxies
// (test/support/delay-proxy.ts: `--delayMs` each way, so one round trip costs 2 × delayMs). For a
// client of node B it times each user-visible operation (LOGIN, BIZ, ACK, HTTP routes, close) and
// lists the Redis commands and MySQL queries node B sent meanwhile, grouped into waves (commands
// less than delayMs apart went out together: one round trip). Small counts, no load.
import net from "node:net";
import { Code, DEFAULT_APP_ID } from "../src/protocol/codes";
import { encodeFrame, FrameDecoder, parseBody } from "../src/protocol/frame";
import { createKeys } from "../src/redis/keys";
import { DelayProxy, type SeenCommand } from "../test/support/delay-proxy";
import { api, connectTestRedis, devJwt, imToken, newUserId } from "../test/support/http-api";
import { ProcessCluster, type ProcessNode } from "../test/support/node-processes";
import { DEFAULT_SETTINGS } from "../test/support/test-cluster";
import { commandLine, parseArgs } from "./lib/args";
import { onCleanup, runMain } from "./lib/lifecycle";

const args = parseArgs({ delayMs: 30, reps: 5, maxSeconds: 60, only: "", trace: false, settleMs: 0, workersOn: "both", traceWorst: false, background: 0 });
// --workersOn b: only the far node runs the workers (every job's round trips are far ones); a: only the near one
const roles = (node: "a" | "b") => (args.workersOn === "both" || args.workersOn === node ? "gateway,http,workers" : "gateway,http");

interface Frame {
  code: number;
  body: any;
  at: number;
}

/** A TCP client whose waits end as the frame arrives (no polling). */
class Tcp {
  readonly frames: Frame[] = [];
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
  private readonly decoder = new FrameDecoder(16 * 1024 * 1024);
  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      const at = performance.now();
      for (const f of this.decoder.push(chunk)) {
        const p = parseBody(f.body);
        this.arrived({ code: f.code, body: p.ok ? p.value : null, at });
      }
    });
    socket.on("error", () => {});
  }
  static connect(address: string): Promise<Tcp> {
    const at = address.lastIndexOf(":");
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
      s.once("error", reject);
      s.once("connect", () => resolve(new Tcp(s)));
    });
  }
  send(code: number, body: object): void {
    this.socket.write(encodeFrame(code, JSON.stringify(body)));
  }
  next(match: (f: Frame) => boolean, what: string, timeoutMs = 10_000): Promise<Frame> {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} in ${timeoutMs} ms; got ${JSON.stringify(this.frames.map((f) => [f.code, f.body]))}`)), timeoutMs);
      this.waiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }
  close(): void {
    this.socket.destroy();
  }
  private arrived(f: Frame): void {
    const w = this.waiters.findIndex((x) => x.match(f));
    if (w >= 0) this.waiters.splice(w, 1)[0].resolve(f);
    else this.frames.push(f);
  }
}

const isCode = (code: number) => (f: Frame) => f.code === code;

interface Sample {
  ms: number;
  /** performance.now() at the start and end of the timed interval (commands after it are listed as "after"). */
  start: number;
  end: number;
  redis: SeenCommand[];
  mysql: SeenCommand[];
}

runMain("far-node", args.maxSeconds, async () => {
  console.log(`# far node: ${commandLine()}\n`);
  const cluster = new ProcessCluster({ ...DEFAULT_SETTINGS, heartbeatSeconds: 30, ackTimeoutMs: 4000 });
  onCleanup(() => cluster.stop());
  const redisProxy = await DelayProxy.start({ host: "127.0.0.1", port: 6379 }, "redis", args.delayMs);
  const mysqlProxy = await DelayProxy.start({ host: "127.0.0.1", port: 3306 }, "mysql", args.delayMs);
  onCleanup(() => redisProxy.close());
  onCleanup(() => mysqlProxy.close());
  const A = await cluster.addNode({ LOG_LEVEL: "warn", ROLES: roles("a") });
  const B = await cluster.addNode({ LOG_LEVEL: "warn", ROLES: roles("b"), REDIS_URL: redisProxy.url("redis://127.0.0.1:6379"), DATABASE_URL: mysqlProxy.url(cluster.databaseUrl) });
  const redis = connectTestRedis();
  onCleanup(() => redis.disconnect());
  const keys = createKeys(cluster.prefix);
  const apiKey = cluster.apiKey;
  console.log(`node B: Redis and MySQL ${args.delayMs} ms away each way (a round trip ${2 * args.delayMs} ms); workers on ${args.workersOn === "both" ? "both nodes" : `node ${args.workersOn.toUpperCase()} only`}\n`);

  const rows: Array<{ name: string; samples: Sample[] }> = [];
  /** Run `op` reps times; it returns the interval to report (start, end) in performance.now(). */
  const measure = async (name: string, op: () => Promise<{ start: number; end: number }>) => {
    if (args.only && !args.only.split(",").some((o) => name.includes(o))) return;
    const samples: Sample[] = [];
    for (let i = 0; i < args.reps; i++) {
      const r0 = redisProxy.commands.length;
      const m0 = mysqlProxy.commands.length;
      const { start, end } = await op();
      if (args.settleMs) await Bun.sleep(args.settleMs);
      // counted: what went out before the end; traced: also what followed within settleMs
      const inWindow = (c: SeenCommand) => c.at >= start && c.at <= end + (args.trace ? args.settleMs : 0) && !isBackground(c, keys.nodes());
      samples.push({ ms: end - start, start, end, redis: redisProxy.since(r0, inWindow), mysql: mysqlProxy.since(m0, inWindow) });
    }
    rows.push({ name, samples });
    const med = median(samples.map((s) => s.ms));
    // traced: the median sample, or with --traceWorst the slowest
    const pick = args.traceWorst ? samples.reduce((a, b) => (b.ms > a.ms ? b : a)) : samples.reduce((a, b) => (Math.abs(b.ms - med) < Math.abs(a.ms - med) ? b : a));
    console.log(`${name}: median ${med.toFixed(0)} ms (${samples.map((s) => s.ms.toFixed(0)).join(", ")})`);
    if (args.trace) {
      for (const line of waves(pick)) console.log(`    ${line}`);
    }
  };

  const loginTcp = async (node: ProcessNode, userId: number, token: string, extra: object = {}) => {
    const c = await Tcp.connect(node.tcp);
    const start = performance.now();
    c.send(Code.LOGIN, { appId: DEFAULT_APP_ID, userId, token, ...extra });
    const f = await c.next(isCode(Code.LOGIN), "LOGIN answer");
    return { c, start, end: f.at, answer: f.body };
  };
  const online = async (node: ProcessNode, userId = newUserId(), extra: object = {}) => {
    const { c } = await loginTcp(node, userId, await imToken(node, userId), extra);
    return { c, userId };
  };

  // --background N: a client of B sends N private messages a second to one of A (which ACKs them)
  // all along, so B's Redis connection is rarely idle, as on a node with users
  if (args.background > 0) {
    const from = await online(B);
    const to = await online(A);
    let k = 0;
    const timer = setInterval(() => from.c.send(Code.BIZ, { bizCode: 5556, clientMsgId: `bg${++k}`, data: { objectId: to.userId, content: "bg" } }), 1000 / args.background);
    const drain = setInterval(() => {
      for (let f = to.c.frames.shift(); f; f = to.c.frames.shift()) if (f.code === Code.BIZ) to.c.send(Code.ACK, { msgId: f.body.msgId });
      from.c.frames.length = 0;
    }, 20);
    onCleanup(() => {
      clearInterval(timer);
      clearInterval(drain);
    });
  }

  // HTTP first (also warms the node up)
  await measure("POST /api/im/config", async () => {
    const jwt = await devJwt(B, newUserId());
    const start = performance.now();
    const r = await api(B.http, "POST", "/api/im/config", { bearer: jwt, body: { appId: DEFAULT_APP_ID } });
    if (r.status !== 200) throw new Error(`im/config ${r.status}`);
    return { start, end: performance.now() };
  });
  await measure("GET /api/im/online", async () => {
    const start = performance.now();
    await api(B.http, "GET", `/api/im/online?userId=${newUserId()}&appId=${DEFAULT_APP_ID}`, { bearer: apiKey });
    return { start, end: performance.now() };
  });
  const roomIds: number[] = [];
  const anchors: string[] = [];
  await measure("POST /api/living/start", async () => {
    const jwt = await devJwt(B, newUserId());
    const start = performance.now();
    const r = await api(B.http, "POST", "/api/living/start", { bearer: jwt, body: { type: 1, roomName: "far" } });
    roomIds.push(r.json.roomId);
    anchors.push(jwt);
    return { start, end: performance.now() };
  });
  await measure("POST /api/living/start (already live)", async () => {
    const start = performance.now();
    await api(B.http, "POST", "/api/living/start", { bearer: anchors[0], body: { type: 1 } });
    return { start, end: performance.now() };
  });
  const room = roomIds[0];
  await measure("GET /api/living/:roomId", async () => {
    const start = performance.now();
    await api(B.http, "GET", `/api/living/${room}`, { bearer: anchors[0] });
    return { start, end: performance.now() };
  });
  await measure("GET /api/living/list", async () => {
    const start = performance.now();
    await api(B.http, "GET", `/api/living/list?type=1`);
    return { start, end: performance.now() };
  });
  await measure("POST /api/im/push (1 user)", async () => {
    const start = performance.now();
    const r = await api(B.http, "POST", "/api/im/push", { bearer: apiKey, body: { appId: DEFAULT_APP_ID, userIds: [newUserId()], bizCode: 9001, data: { x: 1 } } });
    if (r.status !== 200) throw new Error(`push ${r.status}`);
    return { start, end: performance.now() };
  });

  // LOGIN
  await measure("LOGIN tcp", async () => {
    const u = newUserId();
    const token = await imToken(A, u);
    const { c, start, end } = await loginTcp(B, u, token);
    c.close();
    return { start, end };
  });
  await measure("LOGIN tcp, roomId", async () => {
    const u = newUserId();
    const token = await imToken(A, u);
    const { c, start, end } = await loginTcp(B, u, token, { roomId: room });
    c.close();
    return { start, end };
  });
  // room history for recovery
  const sender = await online(A, newUserId(), { roomId: room });
  for (let i = 0; i < 5; i++) {
    sender.c.send(Code.BIZ, { bizCode: 5555, clientMsgId: `h${i}`, data: { roomId: room, content: `hist ${i}` } });
    await sender.c.next(isCode(Code.ACK), "room ACK");
  }
  for (let t = 0; t < 500 && (await redis.zcard(keys.roomLog(room))) < 5; t++) await Bun.sleep(10);
  const latest = Number((await redis.zrevrange(keys.roomLog(room), 0, 0, "WITHSCORES"))[1]);
  await measure("LOGIN tcp, roomId + roomSeq (3 missed)", async () => {
    const u = newUserId();
    const token = await imToken(A, u);
    const { c, start, end } = await loginTcp(B, u, token, { roomId: room, roomSeq: latest - 3 });
    c.close();
    return { start, end };
  });
  await measure("LOGIN tcp, 3 kept messages (to the last one replayed)", async () => {
    const u = newUserId();
    // kept: pushed while offline
    for (let i = 0; i < 3; i++) await api(A.http, "POST", "/api/im/push", { bearer: apiKey, body: { appId: DEFAULT_APP_ID, userIds: [u], bizCode: 9001, data: { i } } });
    const mark = keys.keptMark(DEFAULT_APP_ID, u);
    for (let t = 0; t < 200 && !(await redis.exists(mark)); t++) await Bun.sleep(10);
    const token = await imToken(A, u);
    const { c, start } = await loginTcp(B, u, token);
    let last = 0;
    for (let i = 0; i < 3; i++) {
      const f = await c.next((f) => f.code === Code.BIZ, "replayed message");
      c.send(Code.ACK, { msgId: f.body.msgId });
      last = f.at;
    }
    await Bun.sleep(300);
    c.close();
    return { start, end: last };
  });
  await measure("LOGIN tcp, user online on A (takeover)", async () => {
    const u = newUserId();
    const before = await online(A, u);
    const token = await imToken(A, u);
    const { c, start, end } = await loginTcp(B, u, token);
    await before.c.next((f) => f.code === Code.ERROR, "kicked");
    before.c.close();
    c.close();
    return { start, end };
  });
  await measure("LOGIN tcp + BIZ private in one write → BIZ ACK", async () => {
    const u = newUserId();
    const token = await imToken(A, u);
    const c = await Tcp.connect(B.tcp);
    const start = performance.now();
    c.send(Code.LOGIN, { appId: DEFAULT_APP_ID, userId: u, token });
    c.send(Code.BIZ, { bizCode: 5556, clientMsgId: "first", data: { objectId: newUserId(), content: "hi" } });
    const f = await c.next(isCode(Code.ACK), "ACK");
    c.close();
    return { start, end: f.at };
  });
  await measure("LOGIN ws (token in the upgrade)", async () => {
    const u = newUserId();
    const token = await imToken(A, u);
    const start = performance.now();
    const ws = new WebSocket(`${B.ws}?token=${token}&userId=${u}&appId=${DEFAULT_APP_ID}`);
    const end = await new Promise<number>((resolve, reject) => {
      ws.onmessage = (e) => {
        if (JSON.parse(String(e.data)).code === Code.LOGIN) resolve(performance.now());
      };
      ws.onerror = () => reject(new Error("ws error"));
    });
    ws.close();
    return { start, end };
  });
  await measure("LOGIN ws (LOGIN frame, roomId)", async () => {
    const u = newUserId();
    const token = await imToken(A, u);
    const ws = new WebSocket(B.ws);
    await new Promise((r) => (ws.onopen = r));
    const start = performance.now();
    ws.send(JSON.stringify({ code: Code.LOGIN, body: { appId: DEFAULT_APP_ID, userId: u, token, roomId: room } }));
    const end = await new Promise<number>((resolve) => {
      ws.onmessage = (e) => {
        if (JSON.parse(String(e.data)).code === Code.LOGIN) resolve(performance.now());
      };
    });
    ws.close();
    return { start, end };
  });

  // BIZ
  const onB = await online(B);
  const onA = await online(A);
  const onB2 = await online(B);
  let n = 0;
  await measure("BIZ private B→ sender ACK", async () => {
    const start = performance.now();
    onB.c.send(Code.BIZ, { bizCode: 5556, clientMsgId: `p${++n}`, data: { objectId: onA.userId, content: "hi" } });
    const f = await onB.c.next(isCode(Code.ACK), "ACK");
    await onA.c.next(isCode(Code.BIZ), "delivery");
    return { start, end: f.at };
  });
  // from's private message to `to`, timed to its arrival; `to` ACKs it and `from` gets its ACK
  const delivery = (from: typeof onA, to: typeof onA) => async () => {
    const start = performance.now();
    from.c.send(Code.BIZ, { bizCode: 5556, clientMsgId: `p${++n}`, data: { objectId: to.userId, content: "hi" } });
    const d = await to.c.next(isCode(Code.BIZ), "delivery");
    to.c.send(Code.ACK, { msgId: d.body.msgId });
    await from.c.next(isCode(Code.ACK), "ACK");
    return { start, end: d.at };
  };
  await measure("BIZ private B→A delivery", delivery(onB, onA));
  await measure("BIZ private B→B delivery", delivery(onB, onB2));
  await measure("BIZ private A→B delivery", delivery(onA, onB));
  await measure("ACK on B → pending settled", async () => {
    onA.c.send(Code.BIZ, { bizCode: 5556, clientMsgId: `p${++n}`, data: { objectId: onB.userId, content: "hi" } });
    const d = await onB.c.next(isCode(Code.BIZ), "delivery");
    await onA.c.next(isCode(Code.ACK), "ACK");
    const pending = keys.pending(DEFAULT_APP_ID, onB.userId);
    const start = performance.now();
    onB.c.send(Code.ACK, { msgId: d.body.msgId });
    while (await redis.hexists(pending, d.body.msgId)) await Bun.sleep(1);
    return { start, end: performance.now() };
  });
  const inRoomB = await online(B, newUserId(), { roomId: room });
  const inRoomA = await online(A, newUserId(), { roomId: room });
  const roomSenderB = await online(B, newUserId(), { roomId: room });
  // roomSenderB's room message, timed to its arrival at `timed`; `other` gets it too, the sender its ACK
  const roomDelivery = (timed: typeof onA, other: typeof onA) => async () => {
    const start = performance.now();
    roomSenderB.c.send(Code.BIZ, { bizCode: 5555, clientMsgId: `r${++n}`, data: { roomId: room, content: "hi" } });
    const d = await timed.c.next(isCode(Code.BIZ), "room delivery");
    await other.c.next(isCode(Code.BIZ), "room delivery");
    await roomSenderB.c.next(isCode(Code.ACK), "ACK");
    return { start, end: d.at };
  };
  await measure("BIZ room B→ member on A", roomDelivery(inRoomA, inRoomB));
  await measure("BIZ room B→ member on B", roomDelivery(inRoomB, inRoomA));
  await measure("BIZ room, 5 at once from B → 5th ACK", async () => {
    const start = performance.now();
    for (let i = 0; i < 5; i++) roomSenderB.c.send(Code.BIZ, { bizCode: 5555, clientMsgId: `r${++n}`, data: { roomId: room, content: "hi" } });
    let end = 0;
    for (let i = 0; i < 5; i++) end = (await roomSenderB.c.next(isCode(Code.ACK), "ACK")).at;
    for (let i = 0; i < 5; i++) await Promise.all([inRoomA.c.next(isCode(Code.BIZ), "room delivery"), inRoomB.c.next(isCode(Code.BIZ), "room delivery")]);
    return { start, end };
  });
  await measure("BIZ private, 5 at once from B → 5th ACK", async () => {
    const start = performance.now();
    for (let i = 0; i < 5; i++) onB.c.send(Code.BIZ, { bizCode: 5556, clientMsgId: `p${++n}`, data: { objectId: onA.userId, content: "hi" } });
    let end = 0;
    for (let i = 0; i < 5; i++) end = (await onB.c.next(isCode(Code.ACK), "ACK")).at;
    for (let i = 0; i < 5; i++) {
      const d = await onA.c.next(isCode(Code.BIZ), "delivery");
      onA.c.send(Code.ACK, { msgId: d.body.msgId });
    }
    return { start, end };
  });
  await measure("HEARTBEAT → answer", async () => {
    const start = performance.now();
    onB.c.send(Code.HEARTBEAT, {});
    const f = await onB.c.next(isCode(Code.HEARTBEAT), "HEARTBEAT answer");
    return { start, end: f.at };
  });
  await measure("LOGOUT on B → binding gone", async () => {
    const { c, userId } = await online(B);
    const binding = keys.binding(DEFAULT_APP_ID, userId);
    const start = performance.now();
    c.send(Code.LOGOUT, {});
    while (await redis.exists(binding)) await Bun.sleep(1);
    c.close();
    return { start, end: performance.now() };
  });
  await measure("POST /api/living/close (3 members)", async () => {
    const jwt = await devJwt(B, newUserId());
    const r = await api(B.http, "POST", "/api/living/start", { bearer: jwt, body: { type: 1 } });
    const members = await Promise.all([online(A, newUserId(), { roomId: r.json.roomId }), online(B, newUserId(), { roomId: r.json.roomId })]);
    const start = performance.now();
    const closed = await api(B.http, "POST", "/api/living/close", { bearer: jwt, body: { roomId: r.json.roomId } });
    if (closed.status !== 200) throw new Error(`close ${closed.status}`);
    const end = performance.now();
    for (const m of members) m.c.close();
    return { start, end };
  });
  for (const c of [sender, onA, onB, onB2, inRoomA, inRoomB, roomSenderB]) c.c.close();

  console.log(`\n| operation | median ms | Redis cmds | Redis waves | MySQL cmds | MySQL waves |\n|---|---|---|---|---|---|`);
  for (const { name, samples } of rows) {
    const med = median(samples.map((s) => s.ms));
    const pick = samples.reduce((a, b) => (Math.abs(b.ms - med) < Math.abs(a.ms - med) ? b : a));
    const before = (cs: SeenCommand[]) => cs.filter((c) => c.at <= pick.end);
    console.log(`| ${name} | ${med.toFixed(0)} | ${before(pick.redis).length} | ${groups(before(pick.redis), args.delayMs).length} | ${before(pick.mysql).length} | ${groups(before(pick.mysql), args.delayMs).length} |`);
  }
});

/** The periodic work of a node (registry, room list, BullMQ's idle waits and stall checks), not an operation's. */
function isBackground(c: SeenCommand, nodesKey: string): boolean {
  // the registry's refresh names the nodes zset first; closing a room reads it (ZRANGE), which counts
  if (c.args[0] === "EVALSHA" && c.args[3] === nodesKey) return true;
  const text = c.args.join(" ");
  return /nodeinfo|nodereap|list-lock|living:list|BZPOPMIN|stalled-check|CLIENT|INFO/.test(text) || (c.args[0] === "EVALSHA" && /stalled/.test(text));
}

/**
 * The commands in round trips: Redis ones by what they waited for (a command sent before the reply
 * of the one before it on its connection goes in that one's trip), MySQL ones each alone (a
 * connection runs one query at a time); commands of other connections by time (within delayMs).
 */
function groups(cmds: SeenCommand[], delayMs: number): SeenCommand[][] {
  const out: SeenCommand[][] = [];
  for (const c of [...cmds].sort((a, b) => a.at - b.at)) {
    const last = out[out.length - 1];
    const prev = last?.[last.length - 1];
    const together = prev !== undefined && (prev.conn === c.conn ? c.args[0]?.startsWith("COM_") !== true && c.replied <= prev.index : c.at - prev.at < delayMs);
    if (last && together) last.push(c);
    else out.push([c]);
  }
  return out;
}

function waves(s: Sample): string[] {
  const all = [...s.redis.map((c) => ({ ...c, w: "R" })), ...s.mysql.map((c) => ({ ...c, w: "M" }))].sort((a, b) => a.at - b.at);
  if (all.length === 0) return ["(no commands)"];
  const t0 = s.start;
  return all.map((c) => {
    // a script's sha says nothing: its keys do
    const shown = c.args[0] === "EVALSHA" || c.args[0] === "EVAL" ? [c.args[0], ...c.args.slice(2, 5)] : c.args.slice(0, 4);
    return `+${(c.at - t0).toFixed(0).padStart(4)}${c.at > s.end ? " after" : "      "} ${c.w}${c.conn} #${c.index}/${c.replied} ${shown.map((a) => a.slice(0, 70)).join(" ")}`;
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
