// Cluster-wide order, in one place: msgIds (one Redis sequence, strictly increasing across all
// nodes) and each room's seq are handed out together, in one atomic step, at intake. So a room's
// seq order is its msgId order, which is the order the messages were accepted in: two messages of
// one sender can never swap places, whichever workers process them later.
import type Redis from "ioredis";
import { LIVING_ROOM_NOT_LIVE, type Keys } from "../redis/keys";

export interface Reserved {
  msgId: string;
  /** The room seq, for a message to a room. */
  seq?: number;
  /** A room message whose room closed: it has no seq and must not be queued. */
  roomClosed?: true;
}

// KEYS: msgId sequence, then for each room message its room's seq key, the room's cache entry
// (Keys.livingRoom) and its closed mark (Keys.roomClosed). ARGV: message count, then for each
// message the index (1-based) of its room's seq key in KEYS, or 0; then 1 to refuse rooms that
// closed, 0 not to (the close's own notice). Replies are integers (exact up to 2^53; Lua's
// tostring would print large ones in exponent form); a refused room message's seq is -1.
// A missing msgId sequence (a new Redis, or one that lost its data) starts at the current time in
// microseconds: ids stay above any handed out before, so kept messages and clients' de-duplication
// never meet an old id again.
// A room message whose room closed since its intake check (the close caches the room as not live,
// then reserves its notice, then sets the closed mark) gets no seq: one after the notice's would
// reach no one (every node drops the room's members at the notice), yet its sender was told it was
// accepted.
const RESERVE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2])))
end
local n = tonumber(ARGV[1])
local refuseClosed = ARGV[n + 2] == '1'
local last = redis.call('INCRBY', KEYS[1], n)
local out = {}
for i = 1, n do
  out[2 * i - 1] = last - n + i
  local k = tonumber(ARGV[i + 1])
  if k == 0 then
    out[2 * i] = 0
  elseif refuseClosed and (redis.call('GET', KEYS[k + 1]) == ARGV[n + 3] or redis.call('EXISTS', KEYS[k + 2]) == 1) then
    out[2 * i] = -1
  else
    out[2 * i] = redis.call('INCR', KEYS[k])
  end
end
return out
`;

export class Sequencer {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.redis.defineCommand("imReserve", { lua: RESERVE });
  }

  /**
   * One msgId per entry, in entry order, plus the room's next seq for entries with a roomId; an
   * entry whose room closed gets `roomClosed` instead of a seq, unless `evenIfClosed` (the close's
   * own notice, reserved once the room is cached as closed).
   */
  async reserve(roomIds: Array<number | undefined>, opts: { evenIfClosed?: boolean } = {}): Promise<Reserved[]> {
    const roomKeys: string[] = [];
    const slots = roomIds.map((roomId) => {
      if (roomId === undefined) return 0;
      roomKeys.push(this.keys.roomSeq(roomId), this.keys.livingRoom(roomId), this.keys.roomClosed(roomId));
      return roomKeys.length - 1;
    });
    const keys = [this.keys.msgIdSeq(), ...roomKeys];
    const flat = await (this.redis as unknown as ReserveScript).imReserve(keys.length, ...keys, roomIds.length, ...slots, opts.evenIfClosed ? 0 : 1, LIVING_ROOM_NOT_LIVE);
    return roomIds.map((roomId, i) => {
      const msgId = String(flat[2 * i]);
      if (roomId === undefined) return { msgId };
      const seq = Number(flat[2 * i + 1]);
      return seq < 0 ? { msgId, roomClosed: true } : { msgId, seq };
    });
  }
}

interface ReserveScript {
  imReserve(numKeys: number, ...args: Array<string | number>): Promise<Array<string | number>>;
}
