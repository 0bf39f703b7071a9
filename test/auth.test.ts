// User JWTs (PROTOCOL.md section 6): HS256 signed with IM_JWT_SECRET, `sub` = a decimal userId, an
// `exp`, and optionally the user's `appId`.
// Pure: a Hono app with the auth middleware alone.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { sign } from "hono/jwt";
import { requireUser, type AuthEnv } from "../src/http/auth";
import { onHttpError } from "../src/http/errors";
import { createLogger } from "../src/log";

const SECRET = `jwt-${crypto.randomUUID()}`;
const app = new Hono<AuthEnv>().use(requireUser(SECRET)).get("/me", (c) => c.json(c.get("user")));
app.onError(onHttpError(createLogger("auth-test", "silent")));

async function statusWith(token: string): Promise<number> {
  return (await app.request("/me", { headers: { authorization: `Bearer ${token}` } })).status;
}

test("a user JWT is HS256 with a decimal userId as sub; anything else is 401", async () => {
  const exp = Math.floor(Date.now() / 1000) + 60;
  const ok = await app.request("/me", { headers: { authorization: `Bearer ${await sign({ sub: "42", nickName: "Ann", exp }, SECRET, "HS256")}` } });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toEqual({ userId: 42, nickName: "Ann" });
  expect(await statusWith(await sign({ sub: 43, exp }, SECRET, "HS256"))).toBe(200);
  for (const sub of ["0x10", "1e3", "-1", "0", "4.5", " 7", ""]) expect({ sub, status: await statusWith(await sign({ sub, exp }, SECRET, "HS256")) }).toEqual({ sub, status: 401 });
  expect(await statusWith(await sign({ sub: "42", exp }, SECRET, "HS512"))).toBe(401);
  expect(await statusWith(await sign({ sub: "42", exp }, `${SECRET}x`, "HS256"))).toBe(401);
  expect(await statusWith(await sign({ sub: "42", exp: Math.floor(Date.now() / 1000) - 60 }, SECRET, "HS256"))).toBe(401);
  expect((await app.request("/me")).status).toBe(401);
});

test("a user JWT must expire (exp), and says its app in an optional appId claim (a positive integer)", async () => {
  const exp = Math.floor(Date.now() / 1000) + 60;
  expect(await statusWith(await sign({ sub: "42" }, SECRET, "HS256"))).toBe(401);
  const ofApp = await app.request("/me", { headers: { authorization: `Bearer ${await sign({ sub: "42", appId: 10002, exp }, SECRET, "HS256")}` } });
  expect(await ofApp.json()).toEqual({ userId: 42, appId: 10002 });
  for (const appId of ["10002", 0, -1, 1.5]) expect({ appId, status: await statusWith(await sign({ sub: "42", appId, exp }, SECRET, "HS256")) }).toEqual({ appId, status: 401 });
});
