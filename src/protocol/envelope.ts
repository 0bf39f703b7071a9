// The WebSocket text envelope of PROTOCOL.md section 2: {"code":1003,"body":{...}}.
import { MAGIC } from "./codes";
import { parseJsonObject } from "./frame";

export type ParsedEnvelope =
  | { ok: true; code: number; body: Record<string, unknown> }
  /** `fatal` marks a violation of the envelope itself (treated like a framing violation). */
  | { ok: false; fatal: boolean; reason: string; code?: number };

export function encodeEnvelope(code: number, json: string): string {
  return `{"code":${code},"body":${json}}`;
}

/**
 * Parse one text message. A message that is not a JSON object, has no integer code or a wrong
 * magic is fatal; a body that is not an object is not (the code is known, so it can be answered).
 * A "len" field is ignored.
 */
export function parseEnvelope(text: string): ParsedEnvelope {
  const outer = parseJsonObject(text);
  if (!outer.ok) return { ok: false, fatal: true, reason: outer.reason };
  const { code, body, magic } = outer.value;
  if (magic !== undefined && magic !== MAGIC) return { ok: false, fatal: true, reason: `bad magic ${String(magic)}` };
  if (typeof code !== "number" || !Number.isInteger(code)) return { ok: false, fatal: true, reason: "no integer code" };
  if (body === undefined) return { ok: true, code, body: {} };
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, fatal: false, code, reason: "body is not a JSON object" };
  }
  return { ok: true, code, body: body as Record<string, unknown> };
}
