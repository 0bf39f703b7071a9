// Opening logged-in sessions: TCP connects, then LOGIN frames; WebSockets log in at the upgrade
// (/ws?token=&userId=) and the server answers LOGIN as the socket opens.
import { Code } from "../../src/protocol/codes";
import { encodeFrame } from "../../src/protocol/frame";
import type { NodeProc } from "./cluster";
import { bodyJson } from "./frames";
import { APP_ID } from "./http";
import { TcpClient, WsClient, type Kind, type LeanClient } from "./lean-client";
import { pool } from "./pool";

export interface SessionSpec {
  userId: number;
  token: string;
  node: NodeProc;
  kind: Kind;
}

export interface LoginOptions {
  roomId?: number;
  /** Switch WebSockets to binary frames after login (the server answers in the form last used). */
  wsBinary?: boolean;
  /** Logins in flight at once. */
  window?: number;
}

const LOGIN_TIMEOUT_MS = 30_000;

export function loginFrame(userId: number, token: string, roomId?: number): Uint8Array {
  return encodeFrame(Code.LOGIN, JSON.stringify(roomId === undefined ? { appId: APP_ID, userId, token } : { appId: APP_ID, userId, token, roomId }));
}

/** Resolve on the next frame with `code`; reject on ERROR, close or timeout. */
export function awaitFrame(client: LeanClient, code: number, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${LOGIN_TIMEOUT_MS} ms`)), LOGIN_TIMEOUT_MS);
    client.onFrame = (c, buf, start, end) => {
      if (c === code) {
        clearTimeout(timer);
        resolve(bodyJson(buf, start, end));
      } else if (c === Code.ERROR) {
        clearTimeout(timer);
        reject(new Error(`${what}: ERROR ${JSON.stringify(bodyJson(buf, start, end))}`));
      }
    };
    client.onClose = () => {
      clearTimeout(timer);
      reject(new Error(`${what}: connection closed`));
    };
  });
}

/** Connect TCP clients (not logged in yet). */
export async function connectTcp(specs: SessionSpec[], concurrency = 200): Promise<TcpClient[]> {
  return pool(specs, concurrency, (s) => TcpClient.connect("127.0.0.1", s.node.tcpPort, s.userId, s.node.name));
}

/** LOGIN on connected TCP clients; each latency is LOGIN sent → LOGIN answer, in ms. */
export async function loginTcp(clients: TcpClient[], specs: SessionSpec[], opts: LoginOptions = {}): Promise<number[]> {
  return pool(clients, opts.window ?? 200, async (c, i) => {
    const answered = awaitFrame(c, Code.LOGIN, `TCP login of ${c.userId}`);
    const t0 = performance.now();
    c.send(loginFrame(c.userId, specs[i].token, opts.roomId));
    await answered;
    return performance.now() - t0;
  });
}

export function wsUrl(s: SessionSpec, roomId?: number): string {
  const q = new URLSearchParams({ token: s.token, userId: String(s.userId), appId: String(APP_ID) });
  if (roomId !== undefined) q.set("roomId", String(roomId));
  return `ws://127.0.0.1:${s.node.httpPort}/ws?${q}`;
}

/** WebSocket logins; each latency is `new WebSocket` → LOGIN answer (connect + upgrade + login), ms. */
export async function openWs(specs: SessionSpec[], opts: LoginOptions = {}): Promise<{ clients: WsClient[]; latencies: number[] }> {
  const clients: WsClient[] = new Array(specs.length);
  const latencies = await pool(specs, opts.window ?? 200, async (s, i) => {
    const t0 = performance.now();
    const c = new WsClient(wsUrl(s, opts.roomId), s.userId, s.node.name);
    clients[i] = c;
    await awaitFrame(c, Code.LOGIN, `WS login of ${s.userId}`);
    const ms = performance.now() - t0;
    if (opts.wsBinary) await useBinary(c);
    return ms;
  });
  return { clients, latencies };
}

/** Send one binary HEARTBEAT and wait for its answer: from then on the server writes binary frames. */
export async function useBinary(c: LeanClient): Promise<void> {
  const answered = awaitFrame(c, Code.HEARTBEAT, `binary switch of ${c.userId}`);
  c.send(encodeFrame(Code.HEARTBEAT, "{}"));
  await answered;
}

/** Open and log in a mix of TCP and WS sessions (no timing): for benches that need sessions ready. */
export async function openSessions(specs: SessionSpec[], opts: LoginOptions = {}): Promise<LeanClient[]> {
  const tcpIdx = specs.flatMap((s, i) => (s.kind === "tcp" ? [i] : []));
  const wsIdx = specs.flatMap((s, i) => (s.kind === "ws" ? [i] : []));
  const out: LeanClient[] = new Array(specs.length);
  const tcpSpecs = tcpIdx.map((i) => specs[i]);
  const tcp = await connectTcp(tcpSpecs);
  await loginTcp(tcp, tcpSpecs, opts);
  tcp.forEach((c, k) => (out[tcpIdx[k]] = c));
  const { clients } = await openWs(
    wsIdx.map((i) => specs[i]),
    opts,
  );
  clients.forEach((c, k) => (out[wsIdx[k]] = c));
  for (const c of out) {
    c.onFrame = () => {};
    c.onClose = () => {};
  }
  return out;
}

/** Close clients and give the nodes a moment to run their close cleanups (presence, offline jobs). */
export async function closeAll(clients: LeanClient[], settleMs = 1000): Promise<void> {
  for (const c of clients) c.close();
  await Bun.sleep(settleMs);
}
