// Real node processes (`bun src/main.ts`, as deployed) for integration tests that need to kill,
// freeze or gracefully stop a node as an operator would. Each node logs to
// test-artifacts/<prefix>/<nodeId>.log.
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { DEFAULT_SETTINGS, dropOwnDatabase, newClusterIdentity, nodeEnv, removeClusterKeys, type ClusterIdentity, type ClusterSettings, type TestNode } from "./test-cluster";

const ROOT = join(import.meta.dir, "../..");
const READY_TIMEOUT_MS = 20_000;
/** SIGTERM, then SIGKILL if the node has not exited after this long. */
const STOP_GRACE_MS = 10_000;
const PORT_ATTEMPTS = 3;

export interface ProcessNode extends TestNode {
  pid: number;
  logPath: string;
}

class PortTaken extends Error {}

export class ProcessCluster implements ClusterIdentity {
  readonly prefix: string;
  readonly apiKey: string;
  readonly jwtSecret: string;
  readonly databaseUrl: string;
  readonly nodes: ProcessNode[] = [];
  private readonly procs = new Map<ProcessNode, Subprocess>();
  private readonly logDir: string;

  constructor(readonly settings: ClusterSettings) {
    ({ prefix: this.prefix, apiKey: this.apiKey, jwtSecret: this.jwtSecret, databaseUrl: this.databaseUrl } = newClusterIdentity());
    this.logDir = join(ROOT, "test-artifacts", this.prefix);
    mkdirSync(this.logDir, { recursive: true });
  }

  get heartbeatMs(): number {
    return this.settings.heartbeatSeconds * 1000;
  }

  /**
   * Start one more node of this cluster, with `env` over the cluster's (ROLES, a DATABASE_URL through
   * a proxy...); resolves once it answers /healthz, fails with its log tail. `nodeId`: the id of a
   * stopped node, to start it again as a restarted machine keeps its id (default: a new id).
   */
  async addNode(env: Record<string, string> = {}, nodeId = `${this.prefix}-n${this.procs.size}`): Promise<ProcessNode> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.spawn(nodeId, env);
      } catch (err) {
        // a free port may be taken between our probe and the node's bind: try other ports
        if (!(err instanceof PortTaken) || attempt >= PORT_ATTEMPTS) throw err;
      }
    }
  }

  /** SIGKILL: no goodbye to clients, no cleanup in Redis. Resolves once the process is gone. */
  async kill9(node: ProcessNode): Promise<void> {
    const proc = this.procs.get(node)!;
    proc.kill("SIGKILL");
    await proc.exited;
  }

  /** SIGSTOP / SIGCONT: the node keeps its sockets open but says nothing. */
  pause(node: ProcessNode, paused: boolean): void {
    this.procs.get(node)!.kill(paused ? "SIGSTOP" : "SIGCONT");
  }

  /** Graceful stop (SIGTERM), SIGKILL after STOP_GRACE_MS. */
  async stopNode(node: ProcessNode): Promise<void> {
    const proc = this.procs.get(node)!;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGCONT");
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
    await proc.exited;
    clearTimeout(timer);
  }

  /** Stop every node, then delete the cluster's Redis keys and database. */
  async stop(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((n) => this.stopNode(n)));
    await Promise.all([removeClusterKeys(this.prefix), dropOwnDatabase(this.databaseUrl)]);
  }

  logTail(node: ProcessNode, lines = 40): string {
    try {
      return readFileSync(node.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  private async spawn(nodeId: string, env: Record<string, string>): Promise<ProcessNode> {
    const [httpPort, tcpPort] = freePorts(2);
    const logPath = join(this.logDir, `${nodeId}.log`);
    const fd = openSync(logPath, "a");
    // --no-orphans: a test run that is killed does not leave its nodes running
    const proc = Bun.spawn([process.execPath, "--no-orphans", "src/main.ts"], {
      cwd: ROOT,
      env: { ...process.env, ...nodeEnv(this, nodeId, this.settings, "info"), PORT: String(httpPort), TCP_PORT: String(tcpPort), ...env },
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
    });
    closeSync(fd);
    const node: ProcessNode = { nodeId, http: `http://127.0.0.1:${httpPort}`, tcp: `127.0.0.1:${tcpPort}`, ws: `ws://127.0.0.1:${httpPort}/ws`, pid: proc.pid, logPath };
    this.procs.set(node, proc);
    await this.waitHealthy(node, proc);
    this.nodes.push(node);
    return node;
  }

  private async waitHealthy(node: ProcessNode, proc: Subprocess): Promise<void> {
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

/**
 * Start `count` node processes, one after the other (they take turns on the migrations lock anyway);
 * `env` as for addNode.
 */
export async function startNodeProcesses(count: number, settings: Partial<ClusterSettings> = {}, env: Record<string, string> = {}): Promise<ProcessCluster> {
  const cluster = new ProcessCluster({ ...DEFAULT_SETTINGS, ...settings });
  try {
    for (let i = 0; i < count; i++) await cluster.addNode(env);
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
