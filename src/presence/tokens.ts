// IM login tokens (seed: createImLoginToken / getUserIdByToken): opaque, in Redis, bound to one
// (userId, appId), valid for 300 s and usable for several logins (reconnects) within that time.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";

export const IM_TOKEN_TTL_S = 300;

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

  async create(owner: TokenOwner): Promise<string> {
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
