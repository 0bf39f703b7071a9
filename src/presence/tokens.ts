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

/** The minute in which a user's mints are counted. */
const MINT_WINDOW_S = 60;

// KEYS: the user's mint counter, the new token. ARGV: owner JSON, token TTL s, mints per window,
// window s. Counts the mint, then stores the token if the count is within the bound: 1 stored, 0
// over the bound. The window starts at its first mint and is not stretched by later ones (SET NX,
// not EXPIRE's NX option, which Redis has only from 7.0). A count that fails (a counter of another
// type) fails the script: nothing is minted uncounted. One script, not MULTI + EXEC then SET: one
// round trip for im/config instead of two, which a node far from Redis feels.
const MINT = `
redis.call('SET', KEYS[1], 0, 'EX', ARGV[4], 'NX')
if redis.call('INCR', KEYS[1]) > tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
`;

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
  ) {
    redis.defineCommand("imMintToken", { numberOfKeys: 2, lua: MINT });
  }

  /** A new token for `owner`; ImError `rate_limited` when the user minted TOKENS_PER_MINUTE this minute. */
  async create(owner: TokenOwner): Promise<string> {
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url");
    const stored = await (this.redis as unknown as MintScript).imMintToken(
      this.keys.tokensMinted(owner.appId, owner.userId),
      this.keys.token(token),
      JSON.stringify(owner),
      IM_TOKEN_TTL_S,
      TOKENS_PER_MINUTE,
      MINT_WINDOW_S,
    );
    if (stored !== 1) {
      throw new ImError("rate_limited", `at most ${TOKENS_PER_MINUTE} IM tokens a minute per user: reuse a token (it serves several logins for ${IM_TOKEN_TTL_S} s)`);
    }
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

interface MintScript {
  imMintToken(counter: string, token: string, owner: string, ttlS: number, perWindow: number, windowS: number): Promise<number>;
}
