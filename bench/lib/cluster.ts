// Starts the benchmark's own live-im cluster: two node processes on free 127.0.0.1 ports, a unique
// KEY_PREFIX and a database of their own (so other engineers' tests on this machine never meet
// our keys or rows), pinned to core 0. stop() ends them and removes the keys and the database.
// BENCH_REDIS=pinned gives the run a Redis of its own, pinned to core 0 with the nodes, as
// PERFORMANCE.md measures; by default the nodes use the machine's shared Redis, which is not pinned.
import { mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Subprocess } from "bun";
import mysql from "mysql2/promise";
import { removeClusterKeys } from "../../test/support/test-cluster";
import { findPid } from "./cpu";
import { onCleanup } from "./lifecycle";
import { NODE_CPU, OWN_REDIS, pinPrefix } from "./pin";

const REPO = path.resolve(import.meta.dir, "../..");
const SHARED_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const MYSQL_URL = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";

export interface NodeProc {
  name: string;
  nodeId: string;
  pid: number;
  httpPort: number;
  tcpPort: number;
  httpBase: string;
  logFile: string;
  proc: Subprocess;
}

export interface Cluster {
  prefix: string;
  nodes: NodeProc[];
  /** Shared services' pids, for CPU figures (null when not found). */
  redisPid: number | null;
  dbPid: number | null;
  /** Count warnings/errors the nodes logged (LOG_LEVEL=warn): a clean run logs none. */
  logSummary(): string;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  count?: number;
  /** Extra environment for every node (e.g. ACK_TIMEOUT_MS). */
  env?: Record<string, string>;
}

/** Ports picked by binding port 0 and releasing it: all held at once, so they differ. */
async function freePorts(n: number): Promise<number[]> {
  const listeners = Array.from({ length: n }, () => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
  const ports = listeners.map((l) => l.port);
  for (const l of listeners) l.stop(true);
  return ports;
}

async function waitHealthy(node: NodeProc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (node.proc.exitCode !== null) throw new Error(`node ${node.name} exited (${node.proc.exitCode}); log:\n${tail(node.logFile)}`);
    try {
      const r = await fetch(`${node.httpBase}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(100);
  }
  throw new Error(`node ${node.name} not healthy after ${timeoutMs} ms; log:\n${tail(node.logFile)}`);
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.count ?? 2;
  const prefix = `bench${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const database = `live_im_${prefix}`;
  const logDir = path.join(os.tmpdir(), `live-im-${prefix}`);
  mkdirSync(logDir, { recursive: true });
  const nodes: NodeProc[] = [];
  let stopped = false;
  const ownRedis = OWN_REDIS ? await startOwnRedis() : null;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const n of nodes) if (n.proc.exitCode === null) n.proc.kill("SIGTERM");
    await Promise.all(
      nodes.map(async (n) => {
        const done = await Promise.race([n.proc.exited.then(() => true), Bun.sleep(15_000).then(() => false)]);
        if (!done) n.proc.kill("SIGKILL");
      }),
    );
    if (ownRedis) {
      ownRedis.proc.kill("SIGTERM");
      await ownRedis.proc.exited;
    } else {
      // BullMQ keys have no TTL: delete every key under the run's prefix (never throws)
      await removeClusterKeys(prefix);
    }
    await dropDatabase(database).catch((err) => console.error("could not drop bench database:", err));
  };
  onCleanup(stop);

  for (let i = 0; i < count; i++) {
    const name = String.fromCharCode(65 + i);
    const [httpPort, tcpPort] = await freePorts(2);
    const logFile = path.join(logDir, `node-${name}.log`);
    const nodeId = `${prefix}-${name}`;
    // bash raises the open-files limit as far as allowed (thousands of sockets), then execs the node
    // so that the pid we hold is the node's own
    // BENCH_NODE_FLAGS: extra bun flags for the nodes, e.g. "--cpu-prof-md --cpu-prof-dir=/tmp/prof"
    const flags = (process.env.BENCH_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean);
    const cmd = [...pinPrefix(NODE_CPU), process.execPath, ...flags, "src/main.ts"].map((a) => `'${a}'`).join(" ");
    const proc = Bun.spawn(["bash", "-c", `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ${cmd} >>'${logFile}' 2>&1`], {
      cwd: REPO,
      env: {
        ...process.env,
        NODE_ENV: "development",
        DEV_LOGIN: "1",
        HOST: "127.0.0.1",
        PORT: String(httpPort),
        TCP_PORT: String(tcpPort),
        NODE_ID: nodeId,
        KEY_PREFIX: prefix,
        REDIS_URL: ownRedis?.url ?? SHARED_REDIS_URL,
        DATABASE_URL: `${MYSQL_URL}/${database}`,
        LOG_LEVEL: "warn",
        // connections stay idle for whole runs: no reaping, and no heartbeat traffic to measure
        HEARTBEAT_SECONDS: "600",
        ...opts.env,
      },
      stdout: "ignore",
      stderr: "ignore",
    });
    const node: NodeProc = { name, nodeId, pid: proc.pid, httpPort, tcpPort, httpBase: `http://127.0.0.1:${httpPort}`, logFile, proc };
    nodes.push(node);
    void proc.exited.then(() => {
      if (!stopped) console.error(`!! node ${name} (pid ${proc.pid}) exited unexpectedly: code ${proc.exitCode}, signal ${proc.signalCode}`);
    });
    // one after the other: the first applies the migrations to the fresh database alone
    await waitHealthy(node, 60_000);
  }

  return {
    prefix,
    nodes,
    redisPid: ownRedis?.proc.pid ?? findPid(["redis-server"]),
    dbPid: findPid(["mariadbd", "mysqld"]),
    logSummary: () => nodes.map((n) => `node ${n.name}: ${summarizeLog(n.logFile)}`).join("; "),
    stop,
  };
}

/** A Redis for this run alone, on a free port, pinned to the nodes' core; nothing kept on disk. */
async function startOwnRedis(): Promise<{ url: string; proc: Subprocess }> {
  const [port] = await freePorts(1);
  const args = ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", ""];
  const proc = Bun.spawn([...pinPrefix(NODE_CPU), ...args], { stdout: "ignore", stderr: "ignore" });
  onCleanup(() => proc.kill("SIGKILL"));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode})`);
    if (Bun.spawnSync(["redis-cli", "-p", String(port), "ping"]).stdout.toString().trim() === "PONG") return { url: `redis://127.0.0.1:${port}`, proc };
    await Bun.sleep(100);
  }
  throw new Error(`redis-server on port ${port} did not answer within 10 s`);
}

/** "N lines at warn+" and the most frequent (message, cause) pairs: a clean run logs none. */
function summarizeLog(file: string): string {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return "no log";
  }
  const counts = new Map<string, number>();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    total++;
    let key = line.slice(0, 80);
    try {
      const j = JSON.parse(line) as { msg?: string; err?: { message?: string; stack?: string } };
      const cause = /caused by: [^\n]*?: ([^\n]{0,70})/.exec(j.err?.stack ?? "")?.[1] ?? j.err?.message?.slice(0, 70);
      key = `${j.msg}${cause ? ` (${cause})` : ""}`;
    } catch {
      // not a pino line (e.g. a crash trace): keep its start
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (total === 0) return `0 lines at warn+ (${file})`;
  const top = [...counts].sort((x, y) => y[1] - x[1]).slice(0, 4).map(([k, c]) => `${c}× ${k}`);
  return `${total} lines at warn+ (${file}): ${top.join("; ")}`;
}

async function dropDatabase(name: string): Promise<void> {
  if (!/^live_im_bench[a-z0-9]+$/.test(name)) throw new Error(`refusing to drop ${name}`);
  const conn = await mysql.createConnection(MYSQL_URL);
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}
