// IM login tokens (seed: createImLoginToken / getUserIdByToken): opaque, in Redis, bound to one
// (userId, appId), valid for 300 s and usable for several logins (reconnects) within that time.
import type Redis from "ioredis";
import { ImError } from "../protocol/errors";
import type { Keys } from "../redis/keys";

const IM_TOKEN_TTL_S = 300;
/**
 * Tokens one user may mint per minute. Each lives 300 s in Redis, so without a bound one user JWT
 * could fill Redis; a client mints one per connect or reconnect (with backoff), far fewer than this.
 */
export const TOKENS_PER_MINUTE = 30;

export interface TokenOwner {
  userId: number;
  appId: number;
  /** Profile from the user JWT, shown with the user's room messages. */
  nickName?: string;
  avatar?: string;
}

export class ImTokens {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** A new token for `owner`; ImError `rate_limited` when the user minted TOKENS_PER_MINUTE this minute. */
  async create(owner: TokenOwner): Promise<string> {
    const counter = this.keys.tokensMinted(owner.appId, owner.userId);
    // NX: the window starts at the minute's first mint and is not stretched by later ones (a SET NX,
    // not EXPIRE's NX option, which Redis has only from 7.0)
    const results = (await this.redis.multi().set(counter, 0, "EX", 60, "NX").incr(counter).exec()) ?? [];
    // exec() resolves even when a command failed: a count that failed would mint uncounted
    for (const [err] of results) if (err) throw err;
    const minted = results[1]?.[1] as number;
    if (minted > TOKENS_PER_MINUTE) {
      throw new ImError("rate_limited", `at most ${TOKENS_PER_MINUTE} IM tokens a minute per user: reuse a token (it serves several logins for ${IM_TOKEN_TTL_S} s)`);
    }
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url");
    await this.redis.set(this.keys.token(token), JSON.stringify(owner), "EX", IM_TOKEN_TTL_S);
    return token;
  }

  /** The owner of a live token, or null (unknown or expired). */
  async owner(token: string): Promise<TokenOwner | null> {
    const v = await this.redis.get(this.keys.token(token));
    return v === null ? null : (JSON.parse(v) as TokenOwner);
  }

  /** The token's owner when the token is live and belongs to exactly this user and app, else null. */
  async verify(token: string, userId: number, appId: number): Promise<TokenOwner | null> {
    const owner = await this.owner(token);
    return owner !== null && owner.userId === userId && owner.appId === appId ? owner : null;
  }
}
