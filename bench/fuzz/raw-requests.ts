// Requests that fetch() and WebSocket will not send, written raw to either node: almost-upgrades
// (missing or broken WebSocket headers, wrong method, noise) and HTTP with lying or doubled
// Content-Length, broken chunked encoding, 200 headers, absolute and "*" targets, sometimes
// half-closed at once. The answer may be any refusal, or a close, but never a 5xx.
import { rawHttpStatus } from "../../test/support/raw-tcp";
import type { Case } from "./context";

/** Requests that are not quite upgrades: missing or broken WebSocket headers, wrong method, noise. */
const NEAR_UPGRADES = [
  `GET /ws HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n`,
  `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: !!!\r\nSec-WebSocket-Version: 99\r\n\r\n`,
  `POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello`,
  `GET /ws?token=${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET /ws HTTP/1.0\r\n\r\n`,
  `GET /%77s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nFly-Client-IP: ${"9".repeat(300)}\r\n\r\n`,
  `GARBAGE\r\n\r\n`,
];

/** An answer below 500, or the connection closed; never a hang. */
export async function rawUpgradeCase(c: Case): Promise<void> {
  const node = c.node();
  const request = c.rng.pick(NEAR_UPGRADES);
  c.inputs("raw upgrades");
  const status = await rawHttpStatus(node.http, request, 5000).catch((e: Error) => (c.problem("http hang", `raw upgrade ${node.nodeId}: ${e.message}`), null));
  if (status !== null && status >= 500) c.problem("http 5xx", `raw upgrade ${node.nodeId} ${JSON.stringify(request.slice(0, 120))} -> ${status}`);
}

export async function rawHttpCase(c: Case): Promise<void> {
  const node = c.node();
  const key = c.run.cluster.apiKey;
  const request = c.rng.pick([
    `POST /api/im/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"appId":1}`,
    `POST /api/dev/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`,
    `POST /api/dev/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`,
    `POST /api/dev/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n{"userId":`,
    `GET /api/living/list?type=1 HTTP/1.1\r\nHost: x\r\n${"X-H: v\r\n".repeat(200)}\r\n`,
    `GET /api/living/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET http://evil/api/living/list HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET /api/living/list HTTP/1.1\r\nHost: \u00ff\r\n\r\n`,
    `GET * HTTP/1.1\r\nHost: x\r\n\r\n`,
    `POST /api/dev/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\nContent-Length: 20\r\n\r\n{}`,
  ]);
  c.inputs("raw http requests");
  // a body shorter than its length waits for the server's idle timeout (10 s): that is no hang
  const status = await rawHttpStatus(node.http, request, 15_000, c.rng.chance(0.3)).catch(() => null);
  if (status !== null && status >= 500) c.problem("http 5xx", `raw ${node.nodeId} ${JSON.stringify(request.slice(0, 100))} -> ${status}`);
}
