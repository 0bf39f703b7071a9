// The registry of live nodes: each node refreshes its entry every few seconds; an entry not
// refreshed for 3 periods is dead. A node that dies without a graceful stop leaves state behind
// that only it would have cleaned up (room members, …): whichever live node first finds a dead
// entry runs the cleanups registered with onNodeDead, then drops the entry.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { Logger } from "../log";

export interface NodeInfo {
  nodeId: string;
  region: string;
  wsUrl: string;
  tcpAddress: string;
  connections: number;
  /** False while draining: im/config sends no new clients there. */
  accepting: boolean;
  updatedAt: number;
}

/**
 * Cleans up after a dead node. Must be idempotent: it runs again, on some node, if a run fails or
 * its node dies midway.
 */
export type DeadNodeCleanup = (nodeId: string) => Promise<void>;

/**
 * One live node at a time cleans up after a dead one. The lock is never released: on success the
 * dead entry is dropped, so nobody looks again; after a failure it expires and the cleanup is retried.
 */
const REAP_LOCK_MS = 30_000;

// Drop a dead node's entry unless it came back meanwhile. KEYS: nodes zset. ARGV: nodeId, cutoff ms.
const FORGET = `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;

interface RegistryScripts {
  imForgetNode(nodes: string, nodeId: string, cutoff: number): Promise<number>;
}

export class NodeRegistry {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly cleanups: DeadNodeCleanup[] = [];
  private readonly scripts: RegistryScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly log: Logger,
    private readonly periodMs: number,
    private readonly describe: () => Omit<NodeInfo, "updatedAt">,
  ) {
    redis.defineCommand("imForgetNode", { numberOfKeys: 1, lua: FORGET });
    this.scripts = redis as unknown as RegistryScripts;
  }

  /** Run `cleanup` for every node found dead from now on (call before start()). */
  onNodeDead(cleanup: DeadNodeCleanup): void {
    this.cleanups.push(cleanup);
  }

  /** Register now, then every period, and look for dead nodes each time. Resolves after the first registration. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.log.error({ err }, "node registry refresh failed"));
      this.reapDead().catch((err) => this.log.error({ err }, "looking for dead nodes failed"));
    }, this.periodMs);
  }

  async refresh(): Promise<void> {
    const info: NodeInfo = { ...this.describe(), updatedAt: Date.now() };
    await this.redis
      .multi()
      .zadd(this.keys.nodes(), info.updatedAt, info.nodeId)
      .set(this.keys.nodeInfo(info.nodeId), JSON.stringify(info), "PX", 3 * this.periodMs)
      .exec();
  }

  /** Clean up after every dead node that no other live node is cleaning up; resolves when done. */
  async reapDead(): Promise<void> {
    const cutoff = Date.now() - 3 * this.periodMs;
    const dead = await this.redis.zrangebyscore(this.keys.nodes(), "-inf", cutoff);
    for (const nodeId of dead) {
      const claimed = await this.redis.set(this.keys.nodeReapLock(nodeId), "1", "PX", REAP_LOCK_MS, "NX");
      if (claimed !== "OK") continue;
      try {
        for (const cleanup of this.cleanups) await cleanup(nodeId);
        await this.scripts.imForgetNode(this.keys.nodes(), nodeId, cutoff);
        this.log.warn({ deadNodeId: nodeId }, "cleaned up after a node that stopped without a goodbye");
      } catch (err) {
        this.log.error({ err, deadNodeId: nodeId }, `cleanup after a dead node failed; retried in ${REAP_LOCK_MS} ms`);
      }
    }
  }

  /** Every live node's info. */
  async live(): Promise<NodeInfo[]> {
    const ids = await this.redis.zrangebyscore(this.keys.nodes(), Date.now() - 3 * this.periodMs, "+inf");
    if (ids.length === 0) return [];
    const rows = await this.redis.mget(ids.map((id) => this.keys.nodeInfo(id)));
    return rows.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as NodeInfo);
  }

  async isLive(nodeId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.nodeInfo(nodeId))) === 1;
  }

  /** Stop refreshing and remove this node's entry (a graceful stop: it cleans up after itself). */
  async stop(nodeId: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.multi().zrem(this.keys.nodes(), nodeId).del(this.keys.nodeInfo(nodeId)).exec();
  }
}
