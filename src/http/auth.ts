// Route guards: user routes take a user JWT (HS256, sub = userId); server routes take the API key.
import { timingSafeEqual } from "node:crypto";
import { createMiddleware } from "hono/factory";
import { sign, verify } from "hono/jwt";
import { DEFAULT_APP_ID } from "../protocol/codes";
import { ImError } from "../protocol/errors";

export interface UserClaims {
  userId: number;
  /** The app the user belongs to (claim `appId`); absent: the default app only. */
  appId?: number;
  nickName?: string;
  avatar?: string;
}

export type AuthEnv = { Variables: { user: UserClaims } };

/** The app a user JWT's user is of: the same userId in another app is someone else. */
export function userApp(user: UserClaims): number {
  return user.appId ?? DEFAULT_APP_ID;
}

const DEV_JWT_TTL_S = 24 * 3600;

function bearer(header: string | undefined): string | null {
  const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
  return m ? m[1].trim() : null;
}

export async function mintUserJwt(secret: string, claims: UserClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { sub: String(claims.userId), iat: now, exp: now + DEV_JWT_TTL_S };
  if (claims.appId !== undefined) payload.appId = claims.appId;
  if (claims.nickName) payload.nickName = claims.nickName;
  if (claims.avatar) payload.avatar = claims.avatar;
  return sign(payload, secret, "HS256");
}

export function requireUser(secret: string) {
  return createMiddleware<AuthEnv>(async (c, next) => {
    const token = bearer(c.req.header("authorization"));
    if (!token) throw new ImError("unauthorized", "a user JWT is required (Authorization: Bearer …)");
    let payload: Record<string, unknown>;
    try {
      payload = (await verify(token, secret, "HS256")) as Record<string, unknown>;
    } catch {
      throw new ImError("unauthorized", "bad or expired user JWT");
    }
    // hono checks exp only when it is there: a JWT without one would be good for ever
    if (typeof payload.exp !== "number") throw new ImError("unauthorized", "the JWT has no exp");
    // a decimal userId, as a number or a string ("0x10" or "1e3" are not one)
    const sub = payload.sub;
    const userId = typeof sub === "number" || (typeof sub === "string" && /^[1-9][0-9]*$/.test(sub)) ? Number(sub) : Number.NaN;
    if (!Number.isSafeInteger(userId) || userId <= 0) throw new ImError("unauthorized", "the JWT's sub is not a userId");
    const appId = payload.appId;
    if (appId !== undefined && !(typeof appId === "number" && Number.isSafeInteger(appId) && appId > 0)) throw new ImError("unauthorized", "the JWT's appId is not an appId");
    c.set("user", {
      userId,
      appId,
      nickName: typeof payload.nickName === "string" ? payload.nickName : undefined,
      avatar: typeof payload.avatar === "string" ? payload.avatar : undefined,
    });
    await next();
  });
}

export function isApiKey(given: string | null, apiKey: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(apiKey);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function requireServer(apiKey: string) {
  return createMiddleware(async (c, next) => {
    if (!isApiKey(bearer(c.req.header("authorization")), apiKey)) {
      throw new ImError("unauthorized", "the server API key is required (Authorization: Bearer …)");
    }
    await next();
  });
}
