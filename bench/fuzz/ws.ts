// WebSocket cases. wsCase: an upgrade with a hostile query (repeated, overlong or non-numeric
// fields, lone surrogates, percent noise); 3 in 10 only look at the upgrade's HTTP status. Once
// open: an in-band LOGIN, then up to 25 messages: text envelopes with hostile codes, magic, len and
// bodies, binary frames (some cut short or with a violation behind), empty binary messages. A
// session that logged in and is still open must answer a HEARTBEAT, and no answer may be ERROR
// "internal" or unparsable.
import { Code, DEFAULT_APP_ID, MAGIC } from "../../src/protocol/codes";
import { encodeEnvelope, parseEnvelope } from "../../src/protocol/envelope";
import { parseBody, scanFrames } from "../../src/protocol/frame";
import { upgradeStatus } from "../../test/support/raw-tcp";
import { waitFor } from "../../test/support/wait";
import type { Case, PoolUser } from "./context";
import { CODES, COMMON_CODES, randomFrame, validBody, violation } from "./frames";
import { hostileJsonText, NUM_STRINGS, STRINGS } from "./values";

interface Answer {
  code: number;
  body: Record<string, unknown>;
}

function wsQuery(c: Case, u: PoolUser): string {
  const { rng } = c;
  const parts: string[] = [];
  // a lone surrogate has no UTF-8 form: sent as the raw escapes of its CESU-8 bytes
  const enc = (v: string) => (v.isWellFormed() ? encodeURIComponent(v) : "%ED%A0%80");
  const add = (k: string, v: string) => parts.push(`${enc(k)}=${enc(v)}`);
  const valid = () => (add("token", u.token), add("userId", String(u.userId)));
  switch (rng.int(9)) {
    case 0:
      return "";
    case 1:
      valid();
      break;
    case 2:
      valid();
      add("roomId", rng.pick([String(c.run.room), `${c.run.room}.0`, "-1", "1e3", `0${c.run.room}`, "9007199254740993", "", "abc", "٧"]));
      if (rng.chance(0.5)) add("roomSeq", rng.pick(["0", "5", "-1", "abc", "", "99999999999999999"]));
      break;
    case 3:
      valid();
      add("token", "other");
      add("userId", "1");
      break;
    case 4:
      add("token", "x".repeat(rng.pick([513, 5000, 60_000])));
      add("userId", String(u.userId));
      break;
    case 5:
      add("token", rng.pick(STRINGS));
      add("userId", rng.pick(NUM_STRINGS));
      add("appId", rng.pick(NUM_STRINGS));
      break;
    case 6:
      return "?token&userId&&=&%zz=%&roomId=%E2%82%AC";
    case 7:
      valid();
      add("appId", rng.pick(["10001", "10002", "0", "2147483648"]));
      break;
    default:
      add(rng.pick(["__proto__", "constructor", "token[]", "userId"]), rng.pick(STRINGS));
  }
  return `?${parts.join("&")}`;
}

/** The frames of one server message, or why it is not a valid one. */
function decode(data: string | ArrayBuffer): Answer[] | string {
  if (typeof data === "string") {
    const e = parseEnvelope(data);
    return e.ok ? [{ code: e.code, body: e.body }] : `text, ${e.reason}: ${data.slice(0, 200)}`;
  }
  const scan = scanFrames(new Uint8Array(data), Number.MAX_SAFE_INTEGER);
  if (scan.violation !== null || scan.rest !== data.byteLength) return `binary, ${scan.violation ?? "a partial frame"}`;
  const out: Answer[] = [];
  for (const f of scan.frames) {
    const body = parseBody(f.body);
    if (!body.ok) return `binary code ${f.code}, ${body.reason}`;
    out.push({ code: f.code, body: body.value });
  }
  return out;
}

/** One message: a hostile text envelope (half), binary frames, or an empty binary message. */
function hostileMessage(c: Case, u: PoolUser, peer: number): string | Uint8Array {
  const { rng } = c;
  const kind = rng.int(10);
  if (kind < 5) {
    const code = rng.chance(0.8) ? rng.pick(COMMON_CODES) : rng.pick(CODES);
    const body = hostileJsonText(rng, validBody(c, code, u, peer));
    const text = rng.pick([
      () => encodeEnvelope(code, body),
      () => `{"code":${code},"magic":${rng.pick([MAGIC, 1, `"${MAGIC}"`, null])},"len":${rng.pick([0, -1, '"x"'])},"body":${body}}`,
      () => `{"code":${rng.pick(['"1003"', "1003.5", "null", "1e400", "-0", "[1003]"])},"body":${body}}`,
      () => body,
      () => `{"__proto__":{"code":1003},"body":{}}`,
      () => rng.pick(["", " ", "null", "[]", "{", "\u0000", "💥"]),
    ])();
    return text.length > 70_000 ? "{}" : text;
  }
  if (kind < 9) {
    let bytes: Uint8Array = Buffer.concat(Array.from({ length: 1 + rng.int(3) }, () => randomFrame(c, u, peer)));
    if (rng.chance(0.15)) bytes = bytes.subarray(0, rng.int(bytes.length));
    if (rng.chance(0.05)) bytes = Buffer.concat([bytes, violation(c)]);
    return bytes;
  }
  return new Uint8Array(0);
}

export async function wsCase(c: Case): Promise<void> {
  const { rng } = c;
  const u = c.user();
  const node = c.node();
  const q = wsQuery(c, u);
  const peer = c.user().userId;
  c.inputs("ws upgrades");
  if (rng.chance(0.3)) {
    const status = await upgradeStatus(node.http, `/ws${q}`).catch((e: Error) => (c.problem("http hang", `ws upgrade ${node.nodeId}: ${e.message}`), 0));
    if (status >= 500) c.problem("http 5xx", `ws upgrade ${node.nodeId} /ws${q.slice(0, 200)} -> ${status}`);
    return;
  }
  const ws = new WebSocket(node.ws + q);
  ws.binaryType = "arraybuffer";
  const got: Answer[] = [];
  ws.onmessage = (e) => {
    const answers = decode(e.data as string | ArrayBuffer);
    if (typeof answers === "string") c.problem("server frame not parsable", `ws ${answers}`);
    else got.push(...answers);
  };
  ws.onerror = () => {};
  const opened = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    ws.onopen = () => (clearTimeout(timer), resolve(true));
    ws.onclose = () => (clearTimeout(timer), resolve(false));
  });
  try {
    if (!opened) return;
    if (!q.includes("token=") || rng.chance(0.3)) {
      ws.send(encodeEnvelope(Code.LOGIN, JSON.stringify({ appId: DEFAULT_APP_ID, userId: u.userId, token: u.token, ...(rng.chance(0.4) ? { roomId: c.run.room } : {}) })));
      c.inputs("ws messages");
    }
    for (let i = 1 + rng.int(25); i > 0 && ws.readyState === WebSocket.OPEN; i--) {
      c.inputs("ws messages");
      ws.send(hostileMessage(c, u, peer) as string | Uint8Array<ArrayBuffer>);
    }
    await Bun.sleep(200 + rng.int(300));
    if (ws.readyState === WebSocket.OPEN && got.some((a) => a.code === Code.LOGIN && a.body.data === "true")) {
      const before = got.length;
      const answered = () => got.slice(before).some((a) => a.code === Code.HEARTBEAT);
      ws.send(encodeEnvelope(Code.HEARTBEAT, "{}"));
      await waitFor(() => answered() || ws.readyState !== WebSocket.OPEN, 8000, "a HEARTBEAT answer").catch(() => {});
      if (ws.readyState === WebSocket.OPEN && !answered()) c.problem("session stuck", `ws user ${u.userId} on ${node.nodeId}, query ${q.slice(0, 100)}: no HEARTBEAT answer in 8 s`);
    }
    for (const a of got) if (a.code === Code.ERROR && a.body.error === "internal") c.problem("ERROR internal", `ws user ${u.userId}: ${JSON.stringify(a.body)}`);
  } finally {
    if (rng.chance(0.5)) ws.close();
    else (ws as unknown as { terminate(): void }).terminate();
  }
}
