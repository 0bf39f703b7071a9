// Cluster-wide presence: which node holds a user's one live session.
// The binding appId:userId → "nodeId|connId" lives in Redis with a TTL of 2 heartbeat intervals,
// so a dead node's users go offline by themselves.
import type Redis from "ioredis";
import { LUA_REDIS_NOW_MS } from "../redis/clock";
import type { Keys } from "../redis/keys";

export interface Binding {
  nodeId: string;
  connId: string;
}

// A heartbeat zset lives as long as a binding past its newest beat (each ZADD pushes its TTL back
// up): by then every member in it is stale. Without that, the members of sessions that were never
// unbound (their node was killed) stayed for good in any shard where nobody else beat again.

// KEYS: binding, heartbeat zset. ARGV: value, ttl ms, userId.
// 1 = refreshed, 2 = re-created after it expired, 0 = it belongs to another session now.
const REFRESH = `
${LUA_REDIS_NOW_MS}
local v = redis.call('GET', KEYS[1])
local r = 0
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]); r = 1
elseif not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); r = 2
end
if r > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ARGV[2])
return r
`;

// KEYS: binding, heartbeat zset, then keys to read once the binding is made. ARGV: value, ttl ms,
// userId. Returns the replaced value (false: none), then the value of each key read.
// One script, not MULTI + SET + ZADD + EXEC: a login is mostly Redis round trips and commands.
const BIND = `
${LUA_REDIS_NOW_MS}
local old = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET')
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local out = { old }
for i = 3, #KEYS do out[i - 1] = redis.call('GET', KEYS[i]) end
return out
`;

// KEYS: binding, heartbeat zset. ARGV: value, userId. Deletes only a binding that is still ours.
const UNBIND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
`;

interface PresenceScripts {
  imBind(numKeys: number, ...keysThenArgs: Array<string | number>): Promise<Array<string | null>>;
  imRefreshBinding(binding: string, hb: string, value: string, ttl: number, userId: number): Promise<number>;
  imUnbind(binding: string, hb: string, value: string, userId: number): Promise<number>;
}

export class Presence {
  private readonly scripts: PresenceScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodeId: string,
    /** Binding TTL: 2 heartbeat intervals. */
    private readonly ttlMs: number,
  ) {
    redis.defineCommand("imBind", { lua: BIND });
    redis.defineCommand("imRefreshBinding", { numberOfKeys: 2, lua: REFRESH });
    redis.defineCommand("imUnbind", { numberOfKeys: 2, lua: UNBIND });
    this.scripts = redis as unknown as PresenceScripts;
  }

  private value(connId: string): string {
    return bindingValue(this.nodeId, connId);
  }

  /**
   * Bind the user to this node's connection, replacing any older binding atomically. Resolves to
   * the binding it replaced (another session that must be kicked), if any, and the values of
   * `readAfter`: keys read in the same step, once the binding is made (a login reads the user's kept
   * mark so, in the bind's round trip).
   */
  async bind(appId: number, userId: number, connId: string, readAfter: string[] = []): Promise<{ previous: Binding | null; read: Array<string | null> }> {
    const keys = [this.keys.binding(appId, userId), this.keys.heartbeats(appId, userId), ...readAfter];
    const [old, ...read] = await this.scripts.imBind(keys.length, ...keys, this.value(connId), this.ttlMs, userId);
    return { previous: old === null ? null : parseBinding(old), read };
  }

  /**
   * Heartbeat: extend the binding if it is still this connection's ("refreshed"), or make it again
   * if it expired meanwhile ("recreated": this node or Redis stalled past its TTL); "taken" when a
   * newer session holds it.
   */
  async refresh(appId: number, userId: number, connId: string): Promise<"refreshed" | "recreated" | "taken"> {
    const r = await this.scripts.imRefreshBinding(
      this.keys.binding(appId, userId),
      this.keys.heartbeats(appId, userId),
      this.value(connId),
      this.ttlMs,
      userId,
    );
    return r === 1 ? "refreshed" : r === 2 ? "recreated" : "taken";
  }

  /** Remove the binding only if it still belongs to this connection (a late close never erases a newer login). */
  async unbind(appId: number, userId: number, connId: string): Promise<boolean> {
    const r = await this.scripts.imUnbind(
      this.keys.binding(appId, userId),
      this.keys.heartbeats(appId, userId),
      this.value(connId),
      userId,
    );
    return r === 1;
  }

  async whereIs(appId: number, userId: number): Promise<Binding | null> {
    const v = await this.redis.get(this.keys.binding(appId, userId));
    return v === null ? null : parseBinding(v);
  }

  /** The binding of each online user among `userIds`, in one round trip. Offline users are absent. */
  async bindingsOf(appId: number, userIds: number[]): Promise<Map<number, Binding>> {
    const out = new Map<number, Binding>();
    if (userIds.length === 0) return out;
    const values = await this.redis.mget(userIds.map((u) => this.keys.binding(appId, u)));
    values.forEach((v, i) => {
      if (v !== null) out.set(userIds[i], parseBinding(v));
    });
    return out;
  }
}

/** What a binding holds: node ids may contain "|", connection ids never do. */
export function bindingValue(nodeId: string, connId: string): string {
  return `${nodeId}|${connId}`;
}

export function parseBinding(value: string): Binding {
  const bar = value.lastIndexOf("|");
  return { nodeId: value.slice(0, bar), connId: value.slice(bar + 1) };
}
