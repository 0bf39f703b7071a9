// The per-type list of live rooms (seed: living_room_list), kept in Redis and rebuilt every second
// by whichever node holds a Redis lock. A rebuild fills a temporary list and RENAMEs it over the
// old one, so a reader sees the old list or the new one, never a half-built one.
import type Redis from "ioredis";
import type { Logger } from "../log";
import { ROOM_TYPES } from "../protocol/codes";
import type { Keys } from "../redis/keys";
import type { LivingRooms, Room } from "./living-rooms";
import type { RoomMembership } from "./membership";

const PERIOD_MS = 1000;
/** The lock outlives a few periods, so a builder that dies hands over within seconds. */
const LOCK_MS = 3000;
/** A rebuilt list is served this long without a newer rebuild. */
const FRESH_MS = 3 * PERIOD_MS;

// Take the lock, or keep it if we hold it. KEYS: lock. ARGV: nodeId, ttl.
const TAKE_LOCK = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
`;

export interface RoomPage {
  list: Room[];
  hasNext: boolean;
}

export class RoomList {
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticking = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly rooms: LivingRooms,
    private readonly membership: RoomMembership,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    redis.defineCommand("imTakeListLock", { numberOfKeys: 1, lua: TAKE_LOCK });
  }

  /** One page (1-based) from the cached list; straight from MySQL while no node keeps the list fresh. */
  async page(type: number, page: number, pageSize: number): Promise<RoomPage> {
    const start = (page - 1) * pageSize;
    const key = this.keys.livingList(type);
    const [[, fresh], [, rows]] = (await this.redis
      .multi()
      .exists(this.keys.livingListFresh(type))
      .lrange(key, start, start + pageSize) // one extra row tells whether there is a next page
      .exec()) as [[null, number], [null, string[]]];
    let items: Room[];
    if (fresh === 1) items = rows.map((r) => JSON.parse(r) as Room);
    else items = (await this.withWatchNum(await this.rooms.allOfType(type))).slice(start, start + pageSize + 1);
    return { list: items.slice(0, pageSize), hasNext: items.length > pageSize };
  }

  /** Rebuild every PERIOD_MS; a period whose rebuild finds the last one still running is skipped. */
  start(): void {
    this.timer = setInterval(() => {
      // a slow MySQL must not pile rebuilds up, to all run at once when it answers again
      if (this.ticking) return;
      this.ticking = true;
      this.tick()
        .catch((err) => this.log.error({ err }, "room list rebuild failed"))
        .finally(() => (this.ticking = false));
    }, PERIOD_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Rebuild every type's list if this node holds (or takes) the lock. True when it rebuilt. */
  async tick(): Promise<boolean> {
    const got = await (this.redis as unknown as { imTakeListLock(k: string, n: string, t: number): Promise<number> }).imTakeListLock(
      this.keys.livingListLock(),
      this.nodeId,
      LOCK_MS,
    );
    if (got !== 1) return false;
    for (const type of ROOM_TYPES) await this.rebuild(type);
    return true;
  }

  private async rebuild(type: number): Promise<void> {
    const rooms = await this.withWatchNum(await this.rooms.allOfType(type));
    const tmp = this.keys.livingListTemp(type, this.nodeId);
    const list = this.keys.livingList(type);
    const tx = this.redis.multi().del(tmp);
    // no rooms: no list (Redis has no empty lists, and RENAME needs a source)
    if (rooms.length === 0) tx.del(list);
    for (let i = 0; i < rooms.length; i += 500) tx.rpush(tmp, ...rooms.slice(i, i + 500).map((r) => JSON.stringify(r)));
    if (rooms.length > 0) tx.rename(tmp, list);
    // readers trust the list (or its absence) for a few periods; if rebuilds stop, they ask MySQL
    tx.set(this.keys.livingListFresh(type), "1", "PX", FRESH_MS);
    await tx.exec();
  }

  /** watchNum comes from the membership the im-online / im-offline workers keep. */
  private async withWatchNum(rooms: Room[]): Promise<Room[]> {
    if (rooms.length === 0) return rooms;
    const counts = await this.membership.counts(rooms.map((r) => r.id));
    return rooms.map((r, i) => ({ ...r, watchNum: counts[i] }));
  }
}
