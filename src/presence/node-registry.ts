// The registry of live nodes: each node refreshes its entry every few seconds; an entry not
// refreshed for 3 periods is dead and dropped.
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

export class NodeRegistry {
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly log: Logger,
    private readonly periodMs: number,
    private readonly describe: () => Omit<NodeInfo, "updatedAt">,
  ) {}

  /** Register now, then every period. Resolves after the first registration. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.log.error({ err }, "node registry refresh failed"));
    }, this.periodMs);
  }

  async refresh(): Promise<void> {
    const info: NodeInfo = { ...this.describe(), updatedAt: Date.now() };
    await this.redis
      .multi()
      .zadd(this.keys.nodes(), info.updatedAt, info.nodeId)
      .set(this.keys.nodeInfo(info.nodeId), JSON.stringify(info), "PX", 3 * this.periodMs)
      .zremrangebyscore(this.keys.nodes(), "-inf", info.updatedAt - 3 * this.periodMs)
      .exec();
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

  /** Stop refreshing and remove this node's entry. */
  async stop(nodeId: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.multi().zrem(this.keys.nodes(), nodeId).del(this.keys.nodeInfo(nodeId)).exec();
  }
}
