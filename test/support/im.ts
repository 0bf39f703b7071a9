// HTTP and client helpers over a test Cluster: unique users, JWTs, IM tokens, rooms, presence, and
// ImClients that are closed after each test.
import Redis from "ioredis";
import { ImClient, nativeConnectors, type FromConfigOptions } from "../../src/client";
import type { Cluster, ImNode } from "./cluster";

export const APP_ID = 10001;

let nextUser = 1_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
/** A userId no other test of any run has used (random start, strictly increasing). */
export function newUserId(): number {
  return (nextUser += 1 + Math.floor(Math.random() * 5));
}

export interface ApiResult {
  status: number;
  json: any;
}

export async function api(base: string, method: string, path: string, opts: { bearer?: string; body?: unknown } = {}): Promise<ApiResult> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`;
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: await res.json().catch(() => null) };
}

export async function devJwt(node: ImNode, userId: number): Promise<string> {
  const r = await api(node.http, "POST", "/api/dev/login", { body: { userId } });
  if (r.status !== 200) throw new Error(`dev login of ${userId} at ${node.nodeId}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.token;
}

/** A fresh IM token for `userId` from `node`'s POST /api/im/config. */
export async function imToken(node: ImNode, userId: number): Promise<string> {
  const r = await api(node.http, "POST", "/api/im/config", { bearer: await devJwt(node, userId), body: { appId: APP_ID } });
  if (r.status !== 200) throw new Error(`im/config of ${userId} at ${node.nodeId}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.token;
}

/**
 * A live room: POST /api/living/start as a fresh anchor. A node without the rooms API (404) takes
 * any roomId, as the conformance suite's openRoom does.
 */
export async function openRoom(node: ImNode): Promise<number> {
  const r = await api(node.http, "POST", "/api/living/start", { bearer: await devJwt(node, newUserId()), body: { type: 1, roomName: "test room" } });
  if (r.status === 404) return 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
  if (r.status !== 200 || !Number.isInteger(r.json?.roomId)) throw new Error(`living/start: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.roomId;
}

/** GET /api/im/online as a business backend. */
export async function online(cluster: Cluster, node: ImNode, userId: number): Promise<{ online: boolean; nodeId?: string }> {
  const r = await api(node.http, "GET", `/api/im/online?userId=${userId}&appId=${APP_ID}`, { bearer: cluster.apiKey });
  if (r.status !== 200) throw new Error(`im/online: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** The presence binding of a user in Redis (PROTOCOL: TTL of 2 heartbeat intervals). */
export function bindingKey(cluster: Cluster, userId: number): string {
  return `${cluster.prefix}:bind:${APP_ID}:${userId}`;
}

export function redis(): Redis {
  return new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 3 });
}

/** ImClients made for a test, all closed by closeAll() (afterEach). */
export class Clients {
  private readonly made = new Set<ImClient>();

  /** An ImClient for a new or given user via `nodes[0]`'s im/config (failing over to the rest), not yet connected. */
  async make(nodes: ImNode | ImNode[], opts: FromConfigOptions & { userId?: number } = {}): Promise<ImClient> {
    const list = Array.isArray(nodes) ? nodes : [nodes];
    const userId = opts.userId ?? newUserId();
    const client = await ImClient.fromConfig(
      list.map((n) => n.http),
      await devJwt(list[0], userId),
      { connectors: nativeConnectors, heartbeatMs: 400, timeoutMs: 5000, reconnect: { initialMs: 50, maxMs: 500 }, ...opts, userId },
    );
    this.made.add(client);
    return client;
  }

  /** make() then connect(). */
  async online(nodes: ImNode | ImNode[], opts: FromConfigOptions & { userId?: number } = {}): Promise<ImClient> {
    const client = await this.make(nodes, opts);
    await client.connect();
    return client;
  }

  closeAll(): void {
    for (const c of this.made) c.close();
    this.made.clear();
  }
}
