// The registry of live nodes: each node refreshes its entry every few seconds; an entry not
// refreshed for 3 periods is dead. A node that dies without a graceful stop leaves state behind
// that only it would have cleaned up (room members, …): whichever live node first finds a dead
// entry runs the cleanups registered with onNodeDead, then drops the entry. A node that was only
// stalled (a long GC pause, a frozen VM, Redis out of reach) learns at its next refresh that it was
// cleaned up after, and puts its state back (onRevived). So does a node whose entry is simply gone:
// Redis lost its data (a restart of a Redis that keeps nothing on disk), and with it everything the
// node had put there. Entries are timed by Redis's clock, never a
// node's: nodes in several regions do not share one, and one running ahead would take all the
// others for dead.
import type Redis from "ioredis";
import { LUA_REDIS_NOW_MS } from "../redis/clock";
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
 * Puts back what this node keeps in Redis: "reaped" when another node took it for dead and cleaned
 * up after it, "lost" when Redis lost its data (room seqs and histories started over too).
 */
export type Revival = (cause: "reaped" | "lost") => Promise<void>;

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
/** How long a cleaned-up node's mark waits for it to come back (a dead one never reads it). */
const REAPED_MARK_MS = 24 * 3600 * 1000;
/** An entry not refreshed for this many periods is dead (its info expires then too). */
const DEAD_AFTER_PERIODS = 3;

// This node's entry, timed now, and its info; then whether it was cleaned up after (the marks go):
// 1, or whether its entry was missing though it had registered before (Redis lost its data): 2.
// KEYS: nodes zset, info, reaped mark, reap lock. ARGV: nodeId, info JSON, info TTL ms, 1 if this
// node registered before (else 0).
const REGISTER = `
${LUA_REDIS_NOW_MS}
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local reaped = redis.call('GETDEL', KEYS[3])
local locked = redis.call('GETDEL', KEYS[4])
if reaped or locked then return 1 end
if added == 1 and ARGV[4] == '1' then return 2 end
return 0
`;

// The nodes whose entry is ARGV[1] ms old or older (ARGV[2] "dead"), or younger ("live"). KEYS: nodes zset.
const NODES_BY_AGE = `
${LUA_REDIS_NOW_MS}
if ARGV[2] == 'live' then return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - ARGV[1]), '+inf') end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ARGV[1])
`;

// Drop a dead node's entry unless it came back meanwhile. KEYS: nodes zset. ARGV: nodeId, age ms of the dead.
const FORGET = `
${LUA_REDIS_NOW_MS}
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= now - tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`;

interface RegistryScripts {
  imRegisterNode(nodes: string, info: string, reaped: string, reapLock: string, nodeId: string, infoJson: string, ttlMs: number, registeredBefore: 0 | 1): Promise<number>;
  imNodesByAge(nodes: string, ageMs: number, which: "live" | "dead"): Promise<string[]>;
  imForgetNode(nodes: string, nodeId: string, deadAgeMs: number): Promise<number>;
}

export class NodeRegistry {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly cleanups: DeadNodeCleanup[] = [];
  private readonly revivals: Revival[] = [];
  /** This node's entry was written once: a later refresh that finds it missing finds Redis emptied. */
  private registered = false;
  private readonly scripts: RegistryScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly log: Logger,
    private readonly periodMs: number,
    private readonly describe: () => Omit<NodeInfo, "updatedAt">,
  ) {
    redis.defineCommand("imRegisterNode", { numberOfKeys: 4, lua: REGISTER });
    redis.defineCommand("imNodesByAge", { numberOfKeys: 1, lua: NODES_BY_AGE });
    redis.defineCommand("imForgetNode", { numberOfKeys: 1, lua: FORGET });
    this.scripts = redis as unknown as RegistryScripts;
  }

  /** Run `cleanup` for every node found dead from now on (call before start()). */
  onNodeDead(cleanup: DeadNodeCleanup): void {
    this.cleanups.push(cleanup);
  }

  /**
   * Run `restore` when this node finds, at a refresh, that another node took it for dead and ran
   * the onNodeDead cleanups for it, or that its entry is gone (Redis lost its data): it must put
   * back what they removed.
   */
  onRevived(restore: Revival): void {
    this.revivals.push(restore);
  }

  /** Register now, then every period, and look for dead nodes each time. Resolves after the first registration. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err) => this.log.error({ err }, "node registry refresh failed"));
      this.reapDead().catch((err) => this.log.error({ err }, "looking for dead nodes failed"));
    }, this.periodMs);
  }

  /**
   * Write this node's entry now, as `describe` says it is (a draining node: not accepting), and
   * restore its state (onRevived) if it was taken for dead meanwhile, or Redis lost it. Rejects if
   * either fails; a failed restore is tried again at the next refresh (as after a cleanup).
   */
  async refresh(): Promise<void> {
    const info: NodeInfo = { ...this.describe(), updatedAt: Date.now() };
    // the reap lock goes too: alive, room membership takes this node's members again (membership.ts,
    // JOIN), and a cleanup of it that another node runs now, or that failed midway, may have
    // removed some: put back too
    const found = await this.scripts.imRegisterNode(
      this.keys.nodes(),
      this.keys.nodeInfo(info.nodeId),
      this.keys.nodeReaped(info.nodeId),
      this.keys.nodeReapLock(info.nodeId),
      info.nodeId,
      JSON.stringify(info),
      DEAD_AFTER_PERIODS * this.periodMs,
      this.registered ? 1 : 0,
    );
    this.registered = true;
    if (found === 0) return;
    const cause = found === 1 ? "reaped" : "lost";
    if (cause === "reaped") this.log.warn("this node was taken for dead and cleaned up after; restoring its state");
    else this.log.warn("this node's registry entry was gone (Redis lost its data); restoring its state");
    try {
      for (const restore of this.revivals) await restore(cause);
    } catch (err) {
      // the mark goes back, so the next refresh tries again
      await this.redis.set(this.keys.nodeReaped(info.nodeId), "1", "PX", REAPED_MARK_MS);
      throw err;
    }
  }

  /** Clean up after every dead node that no other live node is cleaning up; resolves when done. */
  async reapDead(): Promise<void> {
    const dead = await this.scripts.imNodesByAge(this.keys.nodes(), DEAD_AFTER_PERIODS * this.periodMs, "dead");
    for (const nodeId of dead) {
      const claimed = await this.redis.set(this.keys.nodeReapLock(nodeId), "1", "PX", REAP_LOCK_MS, "NX");
      if (claimed !== "OK") continue;
      try {
        for (const cleanup of this.cleanups) await cleanup(nodeId);
        // after the cleanups: a node that reads the mark finds nothing of the cleanup still to come
        await this.redis.set(this.keys.nodeReaped(nodeId), "1", "PX", REAPED_MARK_MS);
        await this.scripts.imForgetNode(this.keys.nodes(), nodeId, DEAD_AFTER_PERIODS * this.periodMs);
        this.log.warn({ deadNodeId: nodeId }, "cleaned up after a node that stopped without a goodbye");
      } catch (err) {
        this.log.error({ err, deadNodeId: nodeId }, `cleanup after a dead node failed; retried in ${REAP_LOCK_MS} ms`);
      }
    }
  }

  /** Every live node's info. */
  async live(): Promise<NodeInfo[]> {
    const ids = await this.scripts.imNodesByAge(this.keys.nodes(), DEAD_AFTER_PERIODS * this.periodMs, "live");
    if (ids.length === 0) return [];
    const rows = await this.redis.mget(ids.map((id) => this.keys.nodeInfo(id)));
    return rows.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as NodeInfo);
  }

  /** Stop refreshing and remove this node's entry (a graceful stop: it cleans up after itself). */
  async stop(nodeId: string): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.multi().zrem(this.keys.nodes(), nodeId).del(this.keys.nodeInfo(nodeId)).exec();
  }
}
