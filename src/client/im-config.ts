// Asking the HTTP API where to connect: POST /api/im/config with the user's JWT (PROTOCOL.md section 6).
import { ImClientError } from "./errors";
import type { Endpoint } from "./transport";

/** One POST /api/im/config. 400, 401 and 403 are fatal (retrying the same JWT cannot help); anything else is not. */
export async function fetchImConfig(httpBase: string, userJwt: string, appId: number, timeoutMs: number): Promise<Endpoint> {
  let res: Response;
  try {
    res = await fetch(`${httpBase.replace(/\/+$/, "")}/api/im/config`, {
      method: "POST",
      headers: { authorization: `Bearer ${userJwt}`, "content-type": "application/json" },
      body: JSON.stringify({ appId }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new ImClientError("connect_failed", `POST ${httpBase}/api/im/config: ${(err as Error).message}`);
  }
  const json = (await res.json().catch(() => null)) as Record<string, any> | null;
  if (!res.ok) {
    const code = typeof json?.error?.code === "string" ? json.error.code : `http_${res.status}`;
    // only a refusal of this request itself ends the client; a 404, 408 or 429 from a proxy during a
    // deploy, say, is passed over like a 5xx
    const fatal = res.status === 400 || res.status === 401 || res.status === 403;
    throw new ImClientError(code, `POST ${httpBase}/api/im/config: HTTP ${res.status} ${json?.error?.message ?? ""}`.trim(), fatal);
  }
  if (typeof json?.token !== "string" || typeof json.wsUrl !== "string" || typeof json.tcpAddress !== "string") {
    throw new ImClientError("connect_failed", `POST ${httpBase}/api/im/config: answer lacks token, wsUrl or tcpAddress`);
  }
  return { token: json.token, wsUrl: json.wsUrl, tcpAddress: json.tcpAddress, nodeId: json.nodeId };
}

/**
 * An endpoint source over several HTTP bases (a load balancer, or nodes to fail over between):
 * each call tries them in turn, starting with the one that answered last, and passes over those
 * that cannot be reached or answer other than 400, 401 or 403. Each base's wait is bounded by timeoutMs.
 */
function imConfigSource(bases: readonly string[], userJwt: string, appId: number, timeoutMs: number): () => Promise<Endpoint> {
  if (bases.length === 0) throw new ImClientError("connect_failed", "no HTTP base given", true);
  let preferred = 0;
  return async () => {
    let last: unknown;
    for (let i = 0; i < bases.length; i++) {
      const at = (preferred + i) % bases.length;
      try {
        const endpoint = await fetchImConfig(bases[at], userJwt, appId, timeoutMs);
        preferred = at;
        return endpoint;
      } catch (err) {
        if (err instanceof ImClientError && err.fatal) throw err;
        last = err;
      }
    }
    throw last;
  };
}

/** The userId (`sub`) of a user JWT, read without verifying it: the server checks the token anyway. */
export function jwtSubject(jwt: string): number {
  const payload = jwt.split(".")[1] ?? "";
  let sub: unknown;
  try {
    sub = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch {
    sub = undefined;
  }
  const userId = Number(sub);
  if (!Number.isSafeInteger(userId) || userId <= 0) throw new ImClientError("unauthorized", "the JWT has no numeric sub; pass userId", true);
  return userId;
}

/** A primed answer is handed out only this young: its token lives 300 s (PROTOCOL.md section 4). */
const PRIMED_MAX_AGE_MS = 60_000;

/**
 * The endpoint source of ImClient.fromConfig: asks once now, so that a refused JWT or an unreachable
 * API fails at once, and gives that answer to the first connect while it is young; every later
 * call (each reconnect) asks again, for a fresh token and possibly another node.
 */
export async function primedConfigSource(bases: readonly string[], userJwt: string, appId: number, timeoutMs: number): Promise<() => Promise<Endpoint>> {
  const ask = imConfigSource(bases, userJwt, appId, timeoutMs);
  let primed: { endpoint: Endpoint; at: number } | null = { endpoint: await ask(), at: Date.now() };
  return async () => {
    const p = primed;
    primed = null;
    return p && Date.now() - p.at < PRIMED_MAX_AGE_MS ? p.endpoint : ask();
  };
}
