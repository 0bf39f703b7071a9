// Which users may have kept messages: a Redis index of the im_message table, so that a login looks
// at MySQL only for users who may have something kept. A user's mark holds a token that is new at
// every raise (after each insert of one of its rows); a replay that finds no row, or the delete of
// a user's last ACKed row (kept-store.ts), deletes the mark, but only if nothing raised it
// meanwhile, so a row committed during the replay or the delete always leaves its mark behind.
// Tokens never repeat: with a counter, a mark deleted and raised again would read as unchanged to
// a replay that read it before, which would then delete it.
//
// The index is trusted only while the "ready" key exists: a Redis that lost its data (or never had
// the index) answers "unknown", the login looks at MySQL as before, and the index is rebuilt from
// the table.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";

export type MarkState = { kind: "none" } | { kind: "marked"; version: string } | { kind: "unknown" };

interface User {
  appId: number;
  userId: number;
}

// KEYS: the mark. ARGV: the version read before the replay. Deletes the mark if it is unchanged.
const CLEAR_IF_UNCHANGED = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export class KeptMarks {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    this.redis.defineCommand("imClearKeptMark", { numberOfKeys: 1, lua: CLEAR_IF_UNCHANGED });
  }

  async read(appId: number, userId: number): Promise<MarkState> {
    return this.fromValues(await this.redis.mget(this.keysOf(appId, userId)));
  }

  /** The keys read() reads, for reading them in one step with other commands (see fromValues). */
  keysOf(appId: number, userId: number): string[] {
    return [this.keys.keptMarksReady(), this.keys.keptMark(appId, userId)];
  }

  /** The mark state, from the values of keysOf()'s keys, in order. */
  fromValues([ready, version]: Array<string | null>): MarkState {
    if (version !== null && version !== undefined) return { kind: "marked", version };
    return ready !== null && ready !== undefined ? { kind: "none" } : { kind: "unknown" };
  }

  /** True while the marks cover every kept row. */
  async ready(): Promise<boolean> {
    return (await this.redis.exists(this.keys.keptMarksReady())) === 1;
  }

  /** Raise the marks of these users. Call after their rows are committed. */
  async raise(users: User[]): Promise<void> {
    const keys = new Set(users.map((u) => this.keys.keptMark(u.appId, u.userId)));
    if (keys.size === 0) return;
    const token = crypto.randomUUID();
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.set(key, token);
    // exec() resolves even when single commands failed: a mark missing would hide a kept row
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  }

  /** A replay found nothing kept: drop the mark unless it was raised since `version` was read. */
  async clear(appId: number, userId: number, version: string): Promise<void> {
    await (this.redis as unknown as ClearScript).imClearKeptMark(this.keys.keptMark(appId, userId), version);
  }

  /** Mark every user that has rows (from the table), then trust the index. */
  async rebuild(usersWithRows: User[]): Promise<void> {
    await this.raise(usersWithRows);
    await this.redis.set(this.keys.keptMarksReady(), "1");
  }
}

interface ClearScript {
  imClearKeptMark(key: string, version: string): Promise<number>;
}
