// A test as a user or a business backend over HTTP: unique users, dev JWTs, IM tokens, live rooms,
// online checks; plus a plain Redis connection for looking at the cluster's keys.
import Redis from "ioredis";
import { createKeys } from "../../src/redis/keys";
import type { ClusterIdentity, TestNode } from "./test-cluster";

export const APP_ID = 10001;

let nextUser = 1_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
/** A userId no other test of any run has used (random start, strictly increasing). */
export function newUserId(): number {
  return (nextUser += 1 + Math.floor(Math.random() * 5));
}

export interface ApiResult {
  status: number;
  json: any;
  headers: Headers;
}

/** One JSON request; any status is returned, never thrown. */
export async function api(
  base: string,
  method: string,
  path: string,
  opts: { bearer?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResult> {
  const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
  if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`;
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: await res.json().catch(() => null), headers: res.headers };
}

/** A user JWT from `node`'s POST /api/dev/login, with the profile shown alongside the user's room messages. */
export async function devJwt(node: TestNode, userId: number, profile: { nickName?: string; avatar?: string; appId?: number } = {}): Promise<string> {
  const r = await api(node.http, "POST", "/api/dev/login", { body: { userId, ...profile } });
  if (r.status !== 200) throw new Error(`dev login of ${userId} at ${node.nodeId}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.token;
}

/** A fresh IM token for `userId` from `node`'s POST /api/im/config. */
export async function imToken(node: TestNode, userId: number): Promise<string> {
  const r = await api(node.http, "POST", "/api/im/config", { bearer: await devJwt(node, userId), body: { appId: APP_ID } });
  if (r.status !== 200) throw new Error(`im/config of ${userId} at ${node.nodeId}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.token;
}

/**
 * A live room: POST /api/living/start as a fresh anchor. A node without the rooms API (404) takes
 * any roomId, as the conformance suite's openRoom does.
 */
export async function openRoom(node: TestNode): Promise<number> {
  const r = await api(node.http, "POST", "/api/living/start", { bearer: await devJwt(node, newUserId()), body: { type: 1, roomName: "test room" } });
  if (r.status === 404) return 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
  if (r.status !== 200 || !Number.isInteger(r.json?.roomId)) throw new Error(`living/start: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.roomId;
}

/** GET /api/living/:roomId/online: the room's member count. */
export async function roomOnlineCount(node: TestNode, roomId: number): Promise<number> {
  const r = await api(node.http, "GET", `/api/living/${roomId}/online`);
  if (r.status !== 200) throw new Error(`living/${roomId}/online: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.count;
}

/** GET /api/im/online as a business backend. */
export async function onlineStatus(cluster: ClusterIdentity, node: TestNode, userId: number): Promise<{ online: boolean; nodeId?: string }> {
  const r = await api(node.http, "GET", `/api/im/online?userId=${userId}&appId=${APP_ID}`, { bearer: cluster.apiKey });
  if (r.status !== 200) throw new Error(`im/online: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** The value of one series (e.g. `im_frames_in_total{code="1004"}`) of `node`'s /metrics; 0 while it has none. */
export async function metricValue(node: TestNode, series: string): Promise<number> {
  // bounded: it is polled inside waitFor, which cannot end a predicate that hangs
  const text = await (await fetch(`${node.http}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return Number(new RegExp(`^${series.replace(/[{}]/g, "\\$&")} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
}

/** The presence binding of a user in Redis (PROTOCOL: TTL of 2 heartbeat intervals). */
export function bindingKey(cluster: ClusterIdentity, userId: number): string {
  return createKeys(cluster.prefix).binding(APP_ID, userId);
}

/** A Redis connection of the test's own; disconnect it in afterAll. */
export function connectTestRedis(): Redis {
  return new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 3 });
}
