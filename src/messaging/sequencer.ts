// Cluster-wide order, in one place: msgIds (one Redis sequence, strictly increasing across all
// nodes) and each room's seq are handed out together, in one atomic step, at intake. So a room's
// seq order is its msgId order, which is the order the messages were accepted in: two messages of
// one sender can never swap places, whichever workers process them later.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";

export interface Reserved {
  msgId: string;
  /** The room seq, for a message to a room. */
  seq?: number;
}

// KEYS: msgId sequence, then one room seq key per room message. ARGV: message count, then for each
// message the index (1-based) of its room key in KEYS, or 0. Replies are integers (exact up to 2^53;
// Lua's tostring would print large ones in exponent form).
// A missing msgId sequence (a new Redis, or one that lost its data) starts at the current time in
// microseconds: ids stay above any handed out before, so kept messages and clients' de-duplication
// never meet an old id again.
const RESERVE = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2])))
end
local n = tonumber(ARGV[1])
local last = redis.call('INCRBY', KEYS[1], n)
local out = {}
for i = 1, n do
  out[2 * i - 1] = last - n + i
  local k = tonumber(ARGV[i + 1])
  out[2 * i] = k > 0 and redis.call('INCR', KEYS[k]) or 0
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

  /** One msgId per entry, in entry order, plus the room's next seq for entries with a roomId. */
  async reserve(roomIds: Array<number | undefined>): Promise<Reserved[]> {
    const roomKeys: string[] = [];
    const slots = roomIds.map((roomId) => {
      if (roomId === undefined) return 0;
      roomKeys.push(this.keys.roomSeq(roomId));
      return roomKeys.length + 1;
    });
    const keys = [this.keys.msgIdSeq(), ...roomKeys];
    const flat = await (this.redis as unknown as ReserveScript).imReserve(keys.length, ...keys, roomIds.length, ...slots);
    return roomIds.map((roomId, i) => ({
      msgId: String(flat[2 * i]),
      ...(roomId === undefined ? {} : { seq: Number(flat[2 * i + 1]) }),
    }));
  }
}

interface ReserveScript {
  imReserve(numKeys: number, ...args: Array<string | number>): Promise<Array<string | number>>;
}
