// Real node processes (`bun src/main.ts`, as deployed) for integration tests: a cluster per test
// file with its own KEY_PREFIX, API key and JWT secret, on the local Redis and MySQL, with short
// heartbeat and ACK timings. Each node logs to test-artifacts/<prefix>/<nodeId>.log.
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

const ROOT = join(import.meta.dir, "../..");
const READY_TIMEOUT_MS = 20_000;
/** SIGTERM, then SIGKILL if the node has not exited after this long. */
const STOP_GRACE_MS = 10_000;
const PORT_ATTEMPTS = 3;

export interface ClusterSettings {
  heartbeatSeconds: number;
  ackTimeoutMs: number;
  ackMaxAttempts: number;
  maxBodyBytes: number;
}

const DEFAULTS: ClusterSettings = { heartbeatSeconds: 1, ackTimeoutMs: 400, ackMaxAttempts: 3, maxBodyBytes: 65_536 };

export interface ImNode {
  nodeId: string;
  /** HTTP base, e.g. http://127.0.0.1:41234 */
  http: string;
  /** host:port */
  tcp: string;
  /** ws://host:port/ws */
  ws: string;
  pid: number;
  logPath: string;
}

class PortTaken extends Error {}

export class Cluster {
  readonly prefix = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  readonly apiKey = `key-${crypto.randomUUID()}`;
  readonly jwtSecret = `jwt-${crypto.randomUUID()}`;
  readonly nodes: ImNode[] = [];
  private readonly procs = new Map<ImNode, Subprocess>();
  private readonly logDir = join(ROOT, "test-artifacts", this.prefix);

  constructor(readonly settings: ClusterSettings) {
    mkdirSync(this.logDir, { recursive: true });
  }

  get heartbeatMs(): number {
    return this.settings.heartbeatSeconds * 1000;
  }

  /** Start one more node of this cluster; resolves once it answers /healthz, fails with its log tail. */
  async addNode(): Promise<ImNode> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.spawn(`${this.prefix}-n${this.procs.size}`);
      } catch (err) {
        // a free port may be taken between our probe and the node's bind: try other ports
        if (!(err instanceof PortTaken) || attempt >= PORT_ATTEMPTS) throw err;
      }
    }
  }

  /** SIGKILL: no goodbye to clients, no cleanup in Redis. Resolves once the process is gone. */
  async kill9(node: ImNode): Promise<void> {
    const proc = this.procs.get(node)!;
    proc.kill("SIGKILL");
    await proc.exited;
  }

  /** SIGSTOP / SIGCONT: the node keeps its sockets open but says nothing. */
  pause(node: ImNode, paused: boolean): void {
    this.procs.get(node)!.kill(paused ? "SIGSTOP" : "SIGCONT");
  }

  /** Graceful stop (SIGTERM), SIGKILL after STOP_GRACE_MS. */
  async stopNode(node: ImNode): Promise<void> {
    const proc = this.procs.get(node)!;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGCONT");
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
    await proc.exited;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stopNode(n)));
  }

  logTail(node: ImNode, lines = 40): string {
    try {
      return readFileSync(node.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  private async spawn(nodeId: string): Promise<ImNode> {
    const [httpPort, tcpPort] = freePorts(2);
    const logPath = join(this.logDir, `${nodeId}.log`);
    const fd = openSync(logPath, "a");
    const s = this.settings;
    const proc = Bun.spawn([process.execPath, "src/main.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...{ PORT: String(httpPort), TCP_PORT: String(tcpPort), HOST: "127.0.0.1", NODE_ID: nodeId, KEY_PREFIX: this.prefix },
        ...{ IM_API_KEY: this.apiKey, IM_JWT_SECRET: this.jwtSecret, NODE_ENV: "development", LOG_LEVEL: "info" },
        HEARTBEAT_SECONDS: String(s.heartbeatSeconds),
        ACK_TIMEOUT_MS: String(s.ackTimeoutMs),
        ACK_MAX_ATTEMPTS: String(s.ackMaxAttempts),
        MAX_BODY_BYTES: String(s.maxBodyBytes),
      },
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
    });
    closeSync(fd);
    const node: ImNode = { nodeId, http: `http://127.0.0.1:${httpPort}`, tcp: `127.0.0.1:${tcpPort}`, ws: `ws://127.0.0.1:${httpPort}/ws`, pid: proc.pid, logPath };
    this.procs.set(node, proc);
    await this.waitHealthy(node, proc);
    this.nodes.push(node);
    return node;
  }

  private async waitHealthy(node: ImNode, proc: Subprocess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) {
        this.procs.delete(node);
        const tail = this.logTail(node);
        if (tail.includes("EADDRINUSE")) throw new PortTaken(tail);
        throw new Error(`node ${node.nodeId} exited (${proc.exitCode}) before it was ready; log tail:\n${tail}`);
      }
      const res = await fetch(`${node.http}/healthz`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
      if (res?.ok) return;
      await Bun.sleep(50);
    }
    proc.kill("SIGKILL");
    throw new Error(`node ${node.nodeId}: GET /healthz not 200 within ${READY_TIMEOUT_MS} ms; log tail:\n${this.logTail(node)}`);
  }
}

/** Start a cluster of `count` nodes, one after the other (they take turns on the migrations lock anyway). */
export async function startCluster(count: number, settings: Partial<ClusterSettings> = {}): Promise<Cluster> {
  const cluster = new Cluster({ ...DEFAULTS, ...settings });
  try {
    for (let i = 0; i < count; i++) await cluster.addNode();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Free TCP ports on 127.0.0.1, held open together so that they differ. */
function freePorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
  const ports = listeners.map((l) => l.port);
  for (const l of listeners) l.stop(true);
  return ports;
}
