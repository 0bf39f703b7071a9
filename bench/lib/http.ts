// The HTTP steps before a login (never measured): a user JWT from the dev login, then an IM token.
import { pool } from "./pool";

export const APP_ID = 10001;

async function post(url: string, body: unknown, bearer?: string): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
}

async function json<T>(r: Response, what: string): Promise<T> {
  if (!r.ok) throw new Error(`${what}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

export async function userJwt(base: string, userId: number): Promise<string> {
  return (await json<{ token: string }>(await post(`${base}/api/dev/login`, { userId }), "dev login")).token;
}

export async function imToken(base: string, jwt: string): Promise<string> {
  return (await json<{ token: string }>(await post(`${base}/api/im/config`, { appId: APP_ID }, jwt), "im config")).token;
}

/** IM tokens for many users (tokens live 300 s: fetch them shortly before use). */
export async function imTokens(bases: string[], userIds: number[], concurrency = 32): Promise<string[]> {
  return pool(userIds, concurrency, async (userId, i) => {
    const base = bases[i % bases.length];
    return imToken(base, await userJwt(base, userId));
  });
}

/**
 * Open a live room with POST /api/living/start, if this build has it. null when the route is
 * not there (404): then any roomId is accepted at login.
 */
export async function livingStart(base: string, jwt: string): Promise<number | null> {
  const r = await post(`${base}/api/living/start`, { type: 1, roomName: "bench" }, jwt);
  if (r.status === 404) {
    const text = await r.text();
    // a 404 from the route itself would be an error body about something else than "no route"
    if (text.includes("no route")) return null;
    throw new Error(`living/start: HTTP 404 ${text}`);
  }
  return (await json<{ roomId: number }>(r, "living/start")).roomId;
}

export async function livingClose(base: string, jwt: string, roomId: number): Promise<void> {
  const r = await post(`${base}/api/living/close`, { roomId }, jwt);
  if (!r.ok && r.status !== 404) throw new Error(`living/close: HTTP ${r.status} ${await r.text()}`);
}

let nextUserId = 1_000_000;

/**
 * Fresh userIds: a user logs in once per run, so repetitions never kick each other's sessions.
 * (Each run has its own KEY_PREFIX, so runs cannot meet either.)
 */
export function newUserIds(n: number): number[] {
  const first = nextUserId;
  nextUserId += n;
  return Array.from({ length: n }, (_, i) => first + i);
}
