// Two or more real nodes in this test process (different ports, ids; one shared Redis and MySQL),
// isolated from every other run by a unique key prefix.
import { loadConfig } from "../../src/config";
import { createLogger } from "../../src/log";
import { startNode, type RunningNode } from "../../src/node";

export interface TestNode {
  node: RunningNode;
  http: string;
  nodeId: string;
}

export interface TestCluster {
  nodes: TestNode[];
  prefix: string;
  apiKey: string;
  jwtSecret: string;
  stop(): Promise<void>;
}

export async function startInProcessNodes(count: number, env: Record<string, string> = {}): Promise<TestCluster> {
  const prefix = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const apiKey = `key-${crypto.randomUUID()}`;
  const jwtSecret = `jwt-${crypto.randomUUID()}`;
  const nodes: TestNode[] = [];
  for (let i = 0; i < count; i++) {
    const nodeId = `${prefix}-n${i}`;
    const config = loadConfig({
      ...process.env,
      PORT: "0",
      TCP_PORT: "0",
      HOST: "127.0.0.1",
      NODE_ID: nodeId,
      KEY_PREFIX: prefix,
      IM_API_KEY: apiKey,
      IM_JWT_SECRET: jwtSecret,
      NODE_ENV: "development",
      HEARTBEAT_SECONDS: "1",
      ACK_TIMEOUT_MS: "400",
      LOG_LEVEL: "warn",
      ...env,
    });
    const node = await startNode(config, createLogger(nodeId, config.logLevel));
    nodes.push({ node, http: `http://127.0.0.1:${node.httpPort}`, nodeId });
  }
  return {
    nodes,
    prefix,
    apiKey,
    jwtSecret,
    stop: async () => {
      await Promise.allSettled(nodes.map((n) => n.node.stop()));
    },
  };
}

let nextUser = 300_000_000 + Math.floor(Math.random() * 1_000_000_000);
/** A userId not used before in this run. */
export function newUserId(): number {
  return (nextUser += 1 + Math.floor(Math.random() * 7));
}

export async function api(base: string, method: string, path: string, opts: { bearer?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  const res = await fetch(base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  return { status: res.status, json: (await res.json().catch(() => null)) as any };
}

export async function devJwt(base: string, userId: number): Promise<string> {
  const r = await api(base, "POST", "/api/dev/login", { body: { userId } });
  if (r.status !== 200) throw new Error(`dev login of ${userId}: HTTP ${r.status}`);
  return r.json.token;
}

/** Poll until `fn` returns a truthy value; fail with `what` after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T> | T, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(50);
  }
}
