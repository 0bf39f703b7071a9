// The parts of a hostile HTTP request: Authorization headers (none, malformed, the API key or a key
// next to it, user JWTs with odd claims, the wrong secret, alg "none"), paths (every route, with
// odd ids, queries, encodings and traversal attempts) and bodies (none, not UTF-8, oversized, too
// many userIds, deep nesting, or a valid body for the route made hostile as in values.ts).
import { sign } from "hono/jwt";
import { mintUserJwt } from "../../src/http/auth";
import { DEFAULT_APP_ID } from "../../src/protocol/codes";
import { newUserId } from "../../test/support/http-api";
import type { Case } from "./context";
import { hostileJsonText, INVALID_UTF8, nested, NUMS } from "./values";

export async function authHeader(c: Case): Promise<string | undefined> {
  const { rng } = c;
  const { apiKey, jwtSecret } = c.run.cluster;
  const exp = Math.floor(Date.now() / 1000) + 60;
  const b64 = (json: string) => btoa(json).replace(/=/g, "");
  switch (rng.int(14)) {
    case 0:
      return undefined;
    case 1:
      return "Bearer";
    case 2:
      return "Bearer ";
    case 3:
      return `Bearer ${apiKey}`;
    case 4:
      return `Bearer ${apiKey}x`;
    case 5:
      return `Bearer ${await mintUserJwt(jwtSecret, { userId: newUserId() })}`;
    case 6:
      return `Basic ${btoa(`admin:${apiKey}`)}`;
    case 7:
      return `Basic ${rng.pick(["!!!", "", btoa("admin"), btoa(":")])}`;
    case 8:
      return `Bearer ${await sign({ sub: rng.pick<unknown>(["0x10", "-1", "1e21", 1.5, "9007199254740993", 0, "", null, [1], { a: 1 }]), exp }, jwtSecret, "HS256")}`;
    case 9:
      return `Bearer ${await sign({ sub: "42", exp, appId: rng.pick<unknown>(["x", -1, 1.5, 2 ** 40, null, DEFAULT_APP_ID]), nickName: rng.pick<unknown>([{}, "x".repeat(10_000), 5]) }, jwtSecret, "HS256")}`;
    case 10:
      return `Bearer ${await sign({ sub: "42" }, jwtSecret, "HS256")}`;
    case 11:
      return `Bearer ${await sign({ sub: "42", exp }, "wrong-secret", "HS256")}`;
    case 12:
      return `Bearer ${b64('{"alg":"none","typ":"JWT"}')}.${b64('{"sub":"42","exp":9999999999}')}.`;
    default:
      return `Bearer ${rng.pick(["a.b.c", "...", "\u00ff\u00fe", "x".repeat(10_000), "eyJ.eyJ.sig"])}`;
  }
}

export function httpPath(c: Case): string {
  const { rng } = c;
  const room = String(c.run.room);
  const rid = () => rng.pick([room, "0", "-1", "1.5", "1e3", "abc", "%2e%2e", "%00", "9007199254740993", "99999999999999999999", "%F0%9F%92%A5", "%E2%82%AC", "%", "%zz", "0x10", `${room}%2F1`]);
  const q = () => rng.pick(["", "?type=1", "?type=3&page=0", "?page=-1&pageSize=1000", "?pageSize=100&page=100000", "?type=1&type=2", `?userId=1&appId=${DEFAULT_APP_ID}`, "?userId=abc", `?userId=${"9".repeat(40)}`, "?userId[]=1", "?__proto__=1", "?%zz", "?userId=1&userId=2", "?appId=2147483648&userId=5", "?page=1.5", "?type=%00"]);
  return rng.pick([
    () => "/api/dev/login",
    () => "/api/im/config",
    () => `/api/im/online${q()}`,
    () => "/api/im/push",
    () => "/api/living/start",
    () => "/api/living/close",
    () => `/api/living/list${q()}`,
    () => `/api/living/${rid()}`,
    () => `/api/living/${rid()}/online`,
    () => `/api/living/${rid()}/push`,
    () => `/healthz${q()}`,
    () => "/readyz",
    () => "/metrics",
    () => rng.pick(["/admin/queues", "/admin/queues/", "/admin/queues/api/queues", "/admin/queues/api/queues?activeQueue=im-biz&status=failed&page=1", "/admin/queues/api/queues/nosuch/pause", "/admin/queues/api/queues/nosuch/jobs/1", "/admin/queues/%2e%2e/%2e%2e/etc/passwd", "/admin/queues/static/../../package.json"]),
    () => rng.pick(["/", "/web/app.js", "/web/style.css", "//api/im/config", "/api%2Fim%2Fconfig", "/api/im/config/", "/API/IM/CONFIG", "/api/living/", "/api/living//online", "/%", "/api/im/push?x=%", `/${"a".repeat(8000)}`]),
  ])();
}

export function httpBody(c: Case, path: string): string | Uint8Array | null {
  const { rng } = c;
  const valid = (): Record<string, unknown> => {
    if (path.startsWith("/api/dev/login")) return { userId: newUserId(), nickName: "n" };
    if (path.startsWith("/api/im/config")) return { appId: DEFAULT_APP_ID };
    if (path.startsWith("/api/im/push")) return { appId: DEFAULT_APP_ID, userIds: [newUserId()], bizCode: 6001, data: { a: 1 } };
    if (path.startsWith("/api/living/start")) return { type: 1, roomName: "r" };
    if (path.endsWith("/push")) return { appId: DEFAULT_APP_ID, bizCode: 7001, data: { text: "gift" } };
    // never the run's room: the watcher and the control pair need it open
    if (path.startsWith("/api/living/close")) return { roomId: c.run.room + 1 + rng.int(3) };
    return {};
  };
  switch (rng.int(8)) {
    case 0:
      return null;
    case 1:
      return INVALID_UTF8;
    case 2:
      return "x".repeat(rng.pick([65_537, 2_000_000]));
    case 3:
      return JSON.stringify({ ...valid(), userIds: Array.from({ length: rng.pick([0, 1001, 5]) }, () => rng.pick(NUMS)) });
    case 4:
      return JSON.stringify(valid()).replace(/\}$/, `,"data":${nested(rng.pick([10, 2000, 30_000]), '{"a":', "1", "}")}}`);
    default:
      return hostileJsonText(rng, valid);
  }
}
