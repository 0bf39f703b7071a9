// Reading a BIZ s→c body (a delivery, PROTOCOL.md section 4) into what ImClient emits.
import { BizCode } from "../protocol/codes";
import { parseJsonObject } from "../protocol/frame";
import type { Delivered, PrivateData, RoomData } from "./events";

export type Delivery =
  | { ok: true; msgId: string; reliable: boolean; kind: "room"; event: Delivered<RoomData> }
  | { ok: true; msgId: string; reliable: boolean; kind: "private"; event: Delivered<PrivateData> }
  | { ok: true; msgId: string; reliable: boolean; kind: "push"; event: Delivered<Record<string, unknown>> }
  /** Unreadable; `msgId` is set when it is still known, so that a reliable one can be ACKed. */
  | { ok: false; msgId?: string; reliable: boolean; reason: string };

const MSG_ID = /^[1-9][0-9]*$/;

/**
 * Classify one delivery. Reliable deliveries (5556 and pushes) carry the recipient's `userId` and
 * must be ACKed; room deliveries carry none. Never throws.
 */
export function readDelivery(body: Record<string, unknown>): Delivery {
  const reliable = body.userId !== undefined;
  const msgId = typeof body.msgId === "string" && MSG_ID.test(body.msgId) ? body.msgId : undefined;
  if (msgId === undefined) return { ok: false, reliable, reason: `delivery without a decimal msgId: ${JSON.stringify(body.msgId)}` };
  if (typeof body.bizCode !== "number") return { ok: false, msgId, reliable, reason: "delivery without a bizCode" };
  if (typeof body.data !== "string") return { ok: false, msgId, reliable, reason: "delivery data is not a JSON string" };
  const parsed = parseJsonObject(body.data);
  if (!parsed.ok) return { ok: false, msgId, reliable, reason: `delivery data: ${parsed.reason}` };
  const base = { msgId, bizCode: body.bizCode, ts: typeof body.ts === "number" ? body.ts : 0 };
  const data = parsed.value;
  if (!reliable) {
    if (typeof data.seq !== "number" || typeof data.roomId !== "number") return { ok: false, msgId, reliable, reason: "room delivery without roomId and seq" };
    return { ok: true, msgId, reliable, kind: "room", event: { ...base, data: data as RoomData } };
  }
  if (body.bizCode === BizCode.PRIVATE_CHAT) return { ok: true, msgId, reliable, kind: "private", event: { ...base, data: data as unknown as PrivateData } };
  return { ok: true, msgId, reliable, kind: "push", event: { ...base, data } };
}
