// Soak: rounds of ordinary churn against two real node processes, watching for state that only
// grows. Each round: anchors open rooms, fresh users log in (TCP and WS, on both nodes, half of
// them in a room), send room and private messages (some to users who are offline, so they are
// kept in MySQL and replayed at those users' login in the next round), ACK what they get, then
// half log out and half just drop their connection; the anchors close their rooms. One round
// SIGKILLs a node and starts another in its place; one stops a node gracefully and starts another.
// Between rounds it prints each node's RSS, the run's Redis keys by family (SCAN under its own
// KEY_PREFIX) and its MySQL row counts; after the last round it logs the last offline recipients
// in once (so nothing is left kept on purpose), then waits for TTLs and grace timers to lapse and
// prints the same again. Figures only: nothing is asserted. Stops by itself (--maxSeconds).
//
//   bun bench/soak.ts [--rounds 40] [--users 60] [--settleS 45] [--maxSeconds 180]
import { readFileSync } from "node:fs";
import mysql from "mysql2/promise";
import { ImClient, nativeConnectors } from "../src/client";
import { APP_ID, api, connectTestRedis, devJwt, imToken, newUserId } from "../test/support/http-api";
import { startNodeProcesses, type ProcessCluster, type ProcessNode } from "../test/support/node-processes";

const args = new Map<string, number>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ""), Number(process.argv[i + 1]));
const ROUNDS = args.get("rounds") ?? 40;
const USERS = args.get("users") ?? 60;
const ROOMS = 3;
const SETTLE_S = args.get("settleS") ?? 45;
const MAX_SECONDS = args.get("maxSeconds") ?? 180;

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;

let cluster: ProcessCluster | null = null;
const stopCluster = () => (cluster as ProcessCluster | null)?.stop();
const hardStop = setTimeout(async () => {
  console.error(`!! --maxSeconds ${MAX_SECONDS} reached: stopping`);
  await stopCluster();
  process.exit(2);
}, MAX_SECONDS * 1000);

/** The family of a key: its segments after the prefix, ids replaced by "*". */
function family(key: string, prefix: string): string {
  const segs = key.slice(prefix.length + 1).split(":");
  if (segs[0] === "bull") return `bull:${segs[1]}:${segs.length > 2 && !/^(id|meta|events|marker|wait|active|completed|failed|delayed|paused|stalled-check|prioritized|pc|waiting-children|stalled)$/.test(segs[2]) ? "<job>" : (segs[2] ?? "")}`;
  if (segs[0] === "token" || segs[0] === "call") return `${segs[0]}:*`;
  return segs.map((s) => (/^\d+$/.test(s) || s.startsWith(prefix) ? "*" : s)).join(":");
}

async function keyFamilies(prefix: string): Promise<Map<string, number>> {
  const redis = connectTestRedis();
  const out = new Map<string, number>();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      for (const k of keys) out.set(family(k, prefix), (out.get(family(k, prefix)) ?? 0) + 1);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return out;
}

async function rowCounts(databaseUrl: string): Promise<Record<string, number>> {
  const conn = await mysql.createConnection(databaseUrl);
  try {
    const out: Record<string, number> = {};
    for (const t of ["im_message", "living_room", "living_room_record"]) {
      const [rows] = (await conn.query(`SELECT COUNT(*) AS n FROM ${t}`)) as [Array<{ n: number }>, unknown];
      out[t] = Number(rows[0].n);
    }
    return out;
  } finally {
    await conn.end();
  }
}

function rssMiB(pid: number): string {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    return (kb / 1024).toFixed(0);
  } catch {
    return "gone";
  }
}

const snapshots: Array<{ label: string; families: Map<string, number>; rows: Record<string, number>; rss: string }> = [];

async function snapshot(label: string): Promise<void> {
  const c = cluster!;
  const families = await keyFamilies(c.prefix);
  const rows = await rowCounts(c.databaseUrl);
  const rss = c.nodes.map((n) => `${n.nodeId.slice(c.prefix.length + 1)}=${rssMiB(n.pid)}`).join(" ");
  snapshots.push({ label, families, rows, rss });
  const total = [...families.values()].reduce((a, b) => a + b, 0);
  console.log(`[${elapsed()}] ${label}: keys=${total} rows=${JSON.stringify(rows)} rss MiB ${rss}`);
}

/** The table shows the start, about 8 rounds spread over the run, the end and the settling. */
function printTable(): void {
  const every = Math.ceil(ROUNDS / 8);
  const shown = snapshots.filter((s) => !/^r\d+$/.test(s.label) || Number(s.label.slice(1)) % every === 0 || s.label === `r${ROUNDS}`);
  const names = [...new Set(shown.flatMap((s) => [...s.families.keys()]))].sort();
  console.log(`\n| key family | ${shown.map((s) => s.label).join(" | ")} |`);
  console.log(`|---|${shown.map(() => "---:").join("|")}|`);
  for (const n of names) console.log(`| ${n} | ${shown.map((s) => s.families.get(n) ?? 0).join(" | ")} |`);
  for (const t of ["im_message", "living_room", "living_room_record"]) console.log(`| MySQL ${t} | ${shown.map((s) => s.rows[t]).join(" | ")} |`);
  console.log(`| RSS MiB | ${shown.map((s) => s.rss).join(" | ")} |`);
}

interface Counters {
  room: number;
  private: number;
  errors: number;
}

async function client(node: ProcessNode, userId: number, transport: "tcp" | "ws", roomId: number | undefined, counters: Counters): Promise<ImClient> {
  const token = await imToken(node, userId);
  const c = new ImClient({
    userId,
    appId: APP_ID,
    endpoint: { token, wsUrl: node.ws, tcpAddress: node.tcp, nodeId: node.nodeId },
    transport,
    roomId,
    connectors: nativeConnectors,
    heartbeatMs: 400,
    timeoutMs: 10_000,
    reconnect: false,
  });
  c.on("room", () => counters.room++);
  c.on("private", () => counters.private++);
  c.on("error", () => counters.errors++);
  await c.connect();
  return c;
}

async function openRooms(node: ProcessNode, n: number): Promise<Array<{ roomId: number; jwt: string }>> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const jwt = await devJwt(node, newUserId());
      const r = await api(node.http, "POST", "/api/living/start", { bearer: jwt, body: { type: 1, roomName: "soak" } });
      if (r.status !== 200) throw new Error(`living/start: ${r.status} ${JSON.stringify(r.json)}`);
      return { roomId: r.json.roomId as number, jwt };
    }),
  );
}

/** One round of churn; returns the users sent messages while offline (they log in next round). */
async function round(i: number, comingBack: number[], beforeLeaving?: () => Promise<void>): Promise<number[]> {
  const nodes = cluster!.nodes;
  const counters: Counters = { room: 0, private: 0, errors: 0 };
  const rooms = await openRooms(nodes[i % nodes.length], ROOMS);
  const users = [...comingBack, ...Array.from({ length: USERS - comingBack.length }, () => newUserId())];
  const clients = await Promise.all(
    users.map((u, k) => client(nodes[k % nodes.length], u, k % 4 < 2 ? "tcp" : "ws", k % 2 === 0 ? rooms[k % ROOMS].roomId : undefined, counters)),
  );
  const offline = Array.from({ length: 5 }, () => newUserId());
  const sends: Array<Promise<unknown>> = [];
  for (let m = 0; m < 5; m++) {
    clients.forEach((cl, k) => {
      if (k % 2 === 0) sends.push(cl.sendRoom(`r${i}.${m}`));
      sends.push(cl.sendPrivate(users[(k + 1) % users.length], `p${i}.${m}`));
      if (m === 0 && k < offline.length) sends.push(cl.sendPrivate(offline[k], `kept${i}`));
    });
    await Bun.sleep(100);
  }
  const results = await Promise.allSettled(sends);
  const refused = results.filter((r) => r.status === "rejected").length;
  // let deliveries and their ACKs happen
  await Bun.sleep(1500);
  await beforeLeaving?.();
  await Promise.all(clients.map((cl, k) => (k % 2 === 0 ? cl.logout() : Promise.resolve(cl.close()))));
  for (const r of rooms) {
    const res = await api(nodes[0].http, "POST", "/api/living/close", { bearer: r.jwt, body: { roomId: r.roomId } });
    if (res.status !== 200) console.error(`close ${r.roomId}: ${res.status} ${JSON.stringify(res.json)}`);
  }
  console.log(`[${elapsed()}] round ${i}: ${users.length} users (${comingBack.length} back for kept messages), ${sends.length} sends (${refused} refused), delivered room=${counters.room} private=${counters.private}, client errors=${counters.errors}`);
  return offline;
}

async function main(): Promise<void> {
  cluster = await startNodeProcesses(2);
  const c = cluster;
  console.log(`soak: prefix ${c.prefix}, ${ROUNDS} rounds of ${USERS} users, ${ROOMS} rooms each; HEARTBEAT_SECONDS=${c.settings.heartbeatSeconds}, ACK_TIMEOUT_MS=${c.settings.ackTimeoutMs}`);
  await snapshot("start");
  let comingBack: number[] = [];
  // a crash with sessions on the node: nothing of theirs is cleaned up by the node itself
  const crash = async () => {
    const victim = c.nodes[1];
    await c.kill9(victim);
    c.nodes.splice(1, 1);
    await c.addNode();
    console.log(`[${elapsed()}] SIGKILLed ${victim.nodeId} with its sessions on it, started ${c.nodes[c.nodes.length - 1].nodeId}`);
  };
  for (let i = 1; i <= ROUNDS; i++) {
    comingBack = await round(i, comingBack, i === 2 ? crash : undefined);
    if (i === 4) {
      const leaving = c.nodes[0];
      await c.stopNode(leaving);
      c.nodes.splice(0, 1);
      await c.addNode();
      console.log(`[${elapsed()}] stopped ${leaving.nodeId} gracefully, started ${c.nodes[c.nodes.length - 1].nodeId}`);
    }
    await snapshot(`r${i}`);
  }
  // the last round's offline recipients log in once: nothing stays kept on purpose
  const counters: Counters = { room: 0, private: 0, errors: 0 };
  const last = await Promise.all(comingBack.map((u, k) => client(c.nodes[k % c.nodes.length], u, "tcp", undefined, counters)));
  await Bun.sleep(1500);
  await Promise.all(last.map((cl) => cl.logout()));
  console.log(`[${elapsed()}] last offline recipients logged in and out: ${counters.private} kept messages replayed`);
  await snapshot("end");
  for (let waited = 0; waited < SETTLE_S; waited += 15) {
    await Bun.sleep(15_000);
    await snapshot(`+${waited + 15}s`);
  }
  printTable();
  await showLeftovers(snapshots[0].families);
}

/** A few keys of each family that did not return to its count at the start: type, TTL, a look inside. */
async function showLeftovers(baseline: Map<string, number>): Promise<void> {
  const c = cluster!;
  const redis = connectTestRedis();
  try {
    const shown = new Map<string, number>();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${c.prefix}:*`, "COUNT", 1000);
      cursor = next;
      for (const k of keys) {
        const f = family(k, c.prefix);
        if (f.startsWith("bull:") || (shown.get(f) ?? 0) >= 2 || (snapshots.at(-1)!.families.get(f) ?? 0) <= (baseline.get(f) ?? 0)) continue;
        shown.set(f, (shown.get(f) ?? 0) + 1);
        const type = await redis.type(k);
        const ttl = await redis.pttl(k);
        const inside = type === "hash" ? JSON.stringify(await redis.hgetall(k)) : type === "zset" ? JSON.stringify(await redis.zrange(k, "0", "4", "WITHSCORES")) : type === "string" ? String(await redis.get(k)).slice(0, 80) : "";
        console.log(`leftover ${k.slice(c.prefix.length + 1)} (${type}, ttl ${ttl < 0 ? "none" : `${Math.round(ttl / 1000)} s`}): ${inside.slice(0, 160)}`);
      }
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

try {
  await main();
} catch (err) {
  console.error("soak failed:", err);
  process.exitCode = 1;
} finally {
  clearTimeout(hardStop);
  await stopCluster();
}
