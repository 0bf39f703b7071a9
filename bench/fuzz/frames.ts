// Binary frames (PROTOCOL.md section 1) for the TCP and WebSocket cases: a body valid for its code
// and then made hostile, bodies that are not UTF-8, and framing violations (bad magic, negative or
// oversized lengths, noise) after which the server must close that connection and nothing else.
import { BizCode, Code, DEFAULT_APP_ID, HEADER_BYTES } from "../../src/protocol/codes";
import { encodeFrame } from "../../src/protocol/frame";
import { header } from "../../test/support/raw-tcp";
import type { Case, PoolUser } from "./context";
import { hostileJsonText, INVALID_UTF8 } from "./values";

/** The protocol's codes, codes next to them, and int32 edges. */
export const CODES = [1001, 1002, 1003, 1004, 1005, 1006, 0, -1, 1000, 1007, 2 ** 31 - 1, -(2 ** 31), 18673];
/** Mostly BIZ and ACK: they reach the most code behind the gateway. */
export const COMMON_CODES = [Code.BIZ, Code.BIZ, Code.ACK, Code.HEARTBEAT, Code.LOGIN, Code.LOGOUT];

/** The maker of a valid body for `code`, as user `u` writing to `peer` (LOGIN, BIZ, ACK; {} otherwise). */
export function validBody(c: Case, code: number, u: PoolUser, peer: number): () => Record<string, unknown> {
  const { rng, run } = c;
  return () => {
    switch (code) {
      case Code.LOGIN:
        return { appId: DEFAULT_APP_ID, userId: u.userId, token: u.token, ...(rng.chance(0.5) ? { roomId: run.room } : {}), ...(rng.chance(0.3) ? { roomSeq: rng.int(5) } : {}) };
      case Code.BIZ:
        if (rng.chance(0.5)) {
          const data = { objectId: peer, content: rng.pick(["hi", "💥", "x".repeat(4000)]) };
          return { bizCode: BizCode.PRIVATE_CHAT, clientMsgId: `c-${rng.int(4)}`, data: rng.chance(0.3) ? JSON.stringify(data) : data };
        }
        return { bizCode: rng.pick([BizCode.ROOM_CHAT, BizCode.ROOM_CLOSED, 6001, 1]), clientMsgId: `c-${rng.int(4)}`, data: { roomId: rng.pick([run.room, run.room + 1, 1]), content: "room hi" } };
      case Code.ACK:
        return { msgId: rng.pick([...run.othersMsgIds.slice(-5), "1", "9223372036854775807", "999999999999999999", "0", "-1", "01", "1.5"]) };
      default:
        return {};
    }
  };
}

/** One frame with a hostile body (1 in 20 not UTF-8); mostly common codes. */
export function randomFrame(c: Case, u: PoolUser, peer: number): Uint8Array {
  const code = c.rng.chance(0.75) ? c.rng.pick(COMMON_CODES) : c.rng.pick(CODES);
  if (c.rng.chance(0.05)) return Buffer.concat([header(code, INVALID_UTF8.length), INVALID_UTF8]);
  const text = hostileJsonText(c.rng, validBody(c, code, u, peer));
  // a body over MAX_BODY_BYTES is a framing violation, which violation() covers
  return encodeFrame(code, Buffer.byteLength(text) > c.run.cluster.settings.maxBodyBytes ? "{}" : text);
}

/** Bytes that break framing: the server must close the connection. */
export function violation(c: Case): Uint8Array {
  switch (c.rng.int(5)) {
    case 0:
      return header(Code.HEARTBEAT, 0, 0x1234);
    case 1:
      return header(Code.BIZ, -5);
    case 2:
      return header(Code.BIZ, 65_537);
    case 3:
      return header(Code.BIZ, 2 ** 31 - 1);
    default:
      return Uint8Array.from({ length: HEADER_BYTES + c.rng.int(40) }, () => c.rng.int(256));
  }
}
